"""Discovery against the cluster: its own ServiceAccount, HSMDevices from the API, the report on its pod."""

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from devcluster import kubectl, testkit
from hsm_common import constants, report

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "kustomize" / "base" / "crds"
RBAC = ROOT / "deploy" / "kustomize" / "base" / "rbac" / "discovery.yaml"
DEVICES = ROOT / "services" / "discovery" / "tests" / "data"
NODE = "kwok-node-1"
OTHER_NODE = "kwok-node-2"
POD = "hsm-discovery-e2e"
PICO_SERIAL = "DC6A33145E23A42A"


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """condition's first truthy result within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def hsm_device(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "deviceType": "PicoHSM",
        "pkcs11": {"libraryPath": "/usr/lib/libsc-hsm-pkcs11.so", "pinSecret": {"name": "pin", "key": "pin"}},
        **spec,
    }
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_DEVICE,
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def create_device(kube: testkit.Kube, namespace: str, obj: dict[str, Any]) -> None:
    path = f"/apis/{constants.API_VERSION}/namespaces/{namespace}/{constants.PLURAL_DEVICE}"
    kube.client.request("POST", path, obj)


def rbac_for(namespace: str) -> str:
    """The discovery RBAC as kustomize would render it into namespace."""
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": namespace, "labels": {"app": "hsm-discovery"}},
        "spec": {
            "nodeName": NODE,
            "serviceAccountName": "hsm-discovery",
            "containers": [{"name": "discovery", "image": "registry.example/hsm-discovery:e2e"}],
        },
    }


def device_report(kube: testkit.Kube, namespace: str) -> dict[str, Any] | None:
    found = kube.client.get(f"/api/v1/namespaces/{namespace}/pods/{POD}")
    text = (found["metadata"].get("annotations") or {}).get(constants.ANNOTATION_DEVICE_REPORT)
    return None if text is None else dict(json.loads(text))


@pytest.fixture(scope="module")
def setup(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pathlib.Path]]:
    """A namespace with the discovery RBAC, three HSMDevices and the pod; yields (namespace, tmp dir)."""
    kube.apply_kustomization(CRD_DIR)
    crds = [d["metadata"]["name"] for d in yaml.safe_load_all(kubectl.kustomize(CRD_DIR)) if d]
    kube.wait_crds_established(crds)
    namespace = f"e2e-disc-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube.kubectl("apply", "-f", "-", stdin=rbac_for(namespace))
    pico = {"usb": [{"vendorId": "20A0", "productId": "4230"}]}
    here = {"kubernetes.io/hostname": NODE}
    create_device(kube, namespace, hsm_device(namespace, "pico-explicit", discovery=pico))
    create_device(
        kube,
        namespace,
        hsm_device(namespace, "pico-auto", discovery={"autoDiscovery": True}, nodeSelector=here),
    )
    create_device(
        kube,
        namespace,
        hsm_device(
            namespace, "elsewhere", discovery=pico, nodeSelector={"kubernetes.io/hostname": OTHER_NODE}
        ),
    )
    kube.client.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod(namespace))
    yield namespace, tmp_path_factory.mktemp("discovery")
    kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


@pytest.fixture(scope="module")
def discovery(kube: testkit.Kube, setup: tuple[str, pathlib.Path]) -> Iterator[dict[str, Any]]:
    """The discovery process, acting as its ServiceAccount; yields its first report with both entries."""
    namespace, tmp = setup
    config = kube.service_account_kubeconfig(namespace, "hsm-discovery", tmp / "sa.kubeconfig")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env |= {"KUBECONFIG": str(config), "POD_NAME": POD, "POD_NAMESPACE": namespace, "NODE_NAME": NODE}
    command = ["umockdev-run"]
    for name in ("roothub", "pico", "smartcard-hsm", "mouse"):
        command += ["--device", str(DEVICES / f"{name}.umockdev")]
    command += ["--", sys.executable, "-m", "hsm_discovery", "--health-listen", "127.0.0.1:0"]
    with (tmp / "discovery.log").open("w") as log:
        proc = subprocess.Popen(command, env=env, stderr=log)
    try:
        first = poll(
            lambda: (r := device_report(kube, namespace)) and len(r["devices"]) >= 2 and r,
            timeout=30,
            what="the discovery report",
        )
        yield first
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def serials(rep: dict[str, Any], name: str) -> list[str]:
    return sorted(d["serialNumber"] for d in rep["devices"][name]["devices"])


def test_overlapping_hsm_devices_each_get_their_own_entry(discovery: dict[str, Any]) -> None:
    assert serials(discovery, "pico-explicit") == [PICO_SERIAL]
    assert serials(discovery, "pico-auto") == [PICO_SERIAL, "SCHSM0000001"]


def test_node_selector_leaves_out_hsm_devices_of_other_nodes(discovery: dict[str, Any]) -> None:
    assert "elsewhere" not in discovery["devices"]


def test_annotation_is_the_documented_report(discovery: dict[str, Any]) -> None:
    parsed = report.DeviceReport.model_validate(discovery)
    assert parsed.node_name == NODE
    assert parsed.to_wire() == discovery


def test_hsm_device_created_later_is_reported_through_the_watch(
    kube: testkit.Kube, setup: tuple[str, pathlib.Path], discovery: dict[str, Any]
) -> None:
    namespace, _ = setup
    schsm = {"usb": [{"vendorId": "04e6", "productId": "5817", "serialNumber": "SCHSM0000001"}]}
    create_device(kube, namespace, hsm_device(namespace, "schsm", discovery=schsm))
    rep = poll(
        lambda: (r := device_report(kube, namespace)) and "schsm" in r["devices"] and r,
        timeout=5,
        what="the new HSMDevice's entry",
    )
    assert serials(rep, "schsm") == ["SCHSM0000001"]
    assert serials(rep, "pico-explicit") == [PICO_SERIAL]


def allowed(kube: testkit.Kube, namespace: str, verb: str, resource: str, group: str = "") -> bool:
    """Whether the discovery ServiceAccount may verb resource in namespace (a SubjectAccessReview)."""
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:hsm-discovery",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": attributes,
        },
    }
    answer = kube.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


def test_service_account_may_only_read_hsm_devices_and_patch_pods(
    kube: testkit.Kube, setup: tuple[str, pathlib.Path]
) -> None:
    namespace, _ = setup
    assert allowed(kube, namespace, "watch", constants.PLURAL_DEVICE, constants.GROUP)
    assert allowed(kube, namespace, "patch", "pods")
    assert not allowed(kube, namespace, "update", constants.PLURAL_DEVICE, constants.GROUP)
    assert not allowed(kube, namespace, "get", "secrets")
    assert not allowed(kube, namespace, "delete", "pods")
    assert not allowed(kube, "default", "patch", "pods")
