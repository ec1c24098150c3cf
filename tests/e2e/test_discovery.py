"""Discovery against the cluster: its own ServiceAccount, HSMDevices from the API, the report on its pod."""

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import images, kubectl, nodes, testkit
from hsm_common import constants, report

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "kustomize" / "base" / "crds"
RBAC = ROOT / "deploy" / "kustomize" / "base" / "rbac" / "discovery.yaml"
DEVICES = ROOT / "services" / "discovery" / "tests" / "data"
NODE = nodes.name(1)
OTHER_NODE = nodes.name(2)
POD = "hsm-discovery-e2e"
OUTAGE_POD = "hsm-discovery-outage"
PICO_SERIAL = "DC6A33145E23A42A"


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


def pod(namespace: str, name: str = POD) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "hsm-discovery"}},
        "spec": {
            "nodeName": NODE,
            "serviceAccountName": "hsm-discovery",
            # A container that only blocks: the test runs discovery itself, on the host under umockdev.
            "containers": [{"name": "discovery", "image": images.PAUSE_IMAGE, "imagePullPolicy": "Never"}],
        },
    }


def device_report(kube: testkit.Kube, namespace: str, name: str = POD) -> dict[str, Any] | None:
    found = kube.client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
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


def start_discovery(
    namespace: str, kubeconfig: pathlib.Path, log_path: pathlib.Path, name: str = POD
) -> subprocess.Popen[bytes]:
    """hsm-discovery under umockdev-run with the test devices, as the pod name on NODE."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env |= {"KUBECONFIG": str(kubeconfig), "POD_NAME": name, "POD_NAMESPACE": namespace, "NODE_NAME": NODE}
    command = ["umockdev-run"]
    for name in ("roothub", "pico", "smartcard-hsm", "mouse"):
        command += ["--device", str(DEVICES / f"{name}.umockdev")]
    # No device plugin: this discovery runs on the host, where no kubelet is (the scenario tests the plugin).
    command += ["--", sys.executable, "-m", "hsm_discovery", "--health-listen", "127.0.0.1:0"]
    command += ["--metrics-listen=", "--device-plugin-dir", ""]
    with log_path.open("w") as log:
        return subprocess.Popen(command, env=env, stderr=log)


@pytest.fixture(scope="module")
def discovery(kube: testkit.Kube, setup: tuple[str, pathlib.Path]) -> Iterator[dict[str, Any]]:
    """The discovery process, acting as its ServiceAccount; yields its first report with both entries."""
    namespace, tmp = setup
    config = kube.service_account_kubeconfig(namespace, "hsm-discovery", tmp / "sa.kubeconfig")
    proc = start_discovery(namespace, config, tmp / "discovery.log")
    try:
        first = testkit.poll(
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
    rep = testkit.poll(
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


class Proxy:
    """A TCP relay to the API server that the test can cut and restore, to stage an API outage."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener: socket.socket | None = None
        # Guards _open: the accept thread adds connections, cut closes them.
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.port = 0
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        assert self._listener is not None
        # A bare close leaves the port bound while the accept thread sits in accept(); shutdown wakes it.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._open:
                # shutdown, not just close: it wakes the relay threads and tells the peers at once.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream, timeout=5)
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()


def log_has(path: pathlib.Path, event: str) -> bool:
    return any(json.loads(line).get("event") == event for line in path.read_text().splitlines() if line)


def test_report_is_current_after_an_api_outage(
    kube: testkit.Kube, setup: tuple[str, pathlib.Path], discovery: dict[str, Any]
) -> None:
    namespace, tmp = setup
    config = yaml.safe_load((tmp / "sa.kubeconfig").read_text())
    host, _, port = config["clusters"][0]["cluster"]["server"].removeprefix("https://").rpartition(":")
    proxy = Proxy((host, int(port)))
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    (tmp / "proxied.kubeconfig").write_text(yaml.safe_dump(config))
    # A pod of its own, so the module's discovery process (which sees no outage) cannot answer for it.
    kube.client.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod(namespace, OUTAGE_POD))
    log = tmp / "proxied.log"
    proc = start_discovery(namespace, tmp / "proxied.kubeconfig", log, OUTAGE_POD)
    try:
        testkit.poll(
            lambda: log_has(log, "report_written"), timeout=30, what="the first report through the proxy"
        )
        proxy.cut()
        testkit.poll(
            lambda: log_has(log, "hsmdevice_watch_failed"), timeout=30, what="discovery to notice the outage"
        )
        create_device(
            kube, namespace, hsm_device(namespace, "after-outage", discovery={"autoDiscovery": True})
        )
        proxy.restore()
        testkit.poll(
            lambda: (r := device_report(kube, namespace, OUTAGE_POD)) and "after-outage" in r["devices"],
            timeout=30,
            what="the report made after the outage",
        )
        rep = device_report(kube, namespace, OUTAGE_POD)
        assert rep is not None
        assert serials(rep, "after-outage") == [PICO_SERIAL, "SCHSM0000001"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proxy.cut()
