"""The operator against the cluster, acting as its own ServiceAccount with the RBAC of deploy/kustomize.

Covered here: HSMDevice → owned pool, discovery DaemonSet and agent ServiceAccount; the CA, client
certificate and MAC key Secrets; HSMSecret status without agents (DeviceUnavailable, nothing deleted);
hsmPath escapes refused; deleting one of two HSMDevices removes only its objects.
"""

import os
import pathlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from devcluster import kubeapi, kubectl, testkit
from hsm_common import constants

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "kustomize" / "base" / "crds"
RBAC = ROOT / "deploy" / "kustomize" / "base" / "rbac" / "manager.yaml"
GROUP_PATH = f"/apis/{constants.API_VERSION}"


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


def rbac_for(namespace: str, suffix: str) -> str:
    """The manager RBAC as kustomize would render it into namespace (cluster objects made unique)."""
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = namespace
        else:
            doc["metadata"]["name"] += suffix
        if "roleRef" in doc:
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(kube: testkit.Kube, path: str) -> dict[str, Any] | None:
    try:
        return kube.client.get(path)
    except kubeapi.ApiError as exc:
        if exc.status == 404:
            return None
        raise


def device(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_DEVICE,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deviceType": "Generic",
            "discovery": {"usb": [{"vendorId": "20a0", "productId": "4230"}]},
            "pkcs11": {
                "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
                "tokenLabel": "e2e",
                "pinSecret": {"name": "pin", "key": "pin"},
            },
        },
    }


def hsmsecret(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_SECRET,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def operator(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator process as ServiceAccount hsm-manager of a fresh namespace; yields that namespace."""
    tmp = tmp_path_factory.mktemp("operator")
    kube.apply_kustomization(CRD_DIR)
    crds = [d["metadata"]["name"] for d in yaml.safe_load_all(kubectl.kustomize(CRD_DIR)) if d]
    kube.wait_crds_established(crds)
    namespace = f"e2e-op-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    suffix = f"-{namespace}"
    kube.kubectl("apply", "-f", "-", stdin=rbac_for(namespace, suffix))
    config = kube.service_account_kubeconfig(namespace, "hsm-manager", tmp / "sa.kubeconfig")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(config)
    health = f"127.0.0.1:{free_port()}"
    command = [
        sys.executable, "-m", "hsm_manager", "operator", f"--namespace={namespace}",
        f"--metrics-port={free_port()}", f"--health-listen={health}", "--default-sync-interval=10s",
    ]  # fmt: skip
    with (tmp / "operator.log").open("w") as log:
        proc = subprocess.Popen(command, env=env, stderr=log, stdout=log)
    try:
        poll(
            lambda: get(kube, f"/api/v1/namespaces/{namespace}/secrets/hsm-manager-client-tls"),
            60,
            "the operator's client certificate Secret",
        )
        yield namespace
    finally:
        proc.terminate()
        proc.wait(15)
        print((tmp / "operator.log").read_text()[-4000:])
        kube.kubectl("delete", "--ignore-not-found", "clusterrole,clusterrolebinding", f"hsm-manager{suffix}")
        kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def test_operator_keeps_its_ca_and_mac_key_in_its_namespace(kube: testkit.Kube, operator: str) -> None:
    for name in ("hsm-manager-ca", "hsm-manager-mac-key"):
        assert get(kube, f"/api/v1/namespaces/{operator}/secrets/{name}") is not None


def test_device_gets_an_owned_pool_and_discovery_daemonset(kube: testkit.Kube, operator: str) -> None:
    kube.client.request("POST", f"{GROUP_PATH}/namespaces/{operator}/hsmdevices", device(operator, "alpha"))
    pool = poll(
        lambda: (
            (p := get(kube, f"{GROUP_PATH}/namespaces/{operator}/hsmpools/alpha-pool"))
            and p.get("status")
            and p
        ),
        30,
        "the pool with a status",
    )
    daemonset = poll(
        lambda: get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/alpha-discovery"),
        30,
        "the DaemonSet",
    )
    assert pool["metadata"]["ownerReferences"][0]["name"] == "alpha"
    assert daemonset["metadata"]["ownerReferences"][0]["name"] == "alpha"
    assert pool["status"]["phase"] in ("Pending", "Aggregating", "Error")


def test_hsmsecret_without_agents_reports_device_unavailable(kube: testkit.Kube, operator: str) -> None:
    kube.client.request("POST", f"{GROUP_PATH}/namespaces/{operator}/hsmdevices", device(operator, "beta"))
    path = f"{GROUP_PATH}/namespaces/{operator}/hsmsecrets"
    kube.client.request("POST", path, hsmsecret(operator, "lonely", device="beta"))
    ready = poll(
        lambda: next(
            (c for c in ((get(kube, f"{path}/lonely") or {}).get("status") or {}).get("conditions", [])
             if c["type"] == "Ready"),
            None,
        ),
        30,
        "the Ready condition",
    )  # fmt: skip
    assert (ready["status"], ready["reason"]) == ("False", "DeviceUnavailable")
    assert get(kube, f"/api/v1/namespaces/{operator}/secrets/lonely") is None


@pytest.mark.parametrize("hsm_path", ["../b/x", "/abs/x", "UPPER/x"])
def test_hsmsecret_path_escape_is_refused(kube: testkit.Kube, operator: str, hsm_path: str) -> None:
    path = f"{GROUP_PATH}/namespaces/{operator}/hsmsecrets"
    with pytest.raises(kubeapi.ApiError) as refused:
        kube.client.request(
            "POST", path, hsmsecret(operator, f"esc-{uuid.uuid4().hex[:6]}", hsmPath=hsm_path)
        )
    assert refused.value.status == 422
    assert "hsmPath" in refused.value.body


def test_deleting_one_device_leaves_the_other(kube: testkit.Kube, operator: str) -> None:
    base = f"{GROUP_PATH}/namespaces/{operator}"
    for name in ("one", "two"):
        kube.client.request("POST", f"{base}/hsmdevices", device(operator, name))
    for name in ("one", "two"):
        poll(lambda n=name: get(kube, f"{base}/hsmpools/{n}-pool"), 30, f"pool {name}")
    kube.client.request("DELETE", f"{base}/hsmdevices/one")
    poll(lambda: get(kube, f"{base}/hsmpools/one-pool") is None, 60, "pool one to be collected")
    poll(
        lambda: get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/one-discovery") is None,
        60,
        "DaemonSet one to be collected",
    )
    assert get(kube, f"{base}/hsmpools/two-pool") is not None
    assert get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/two-discovery") is not None
