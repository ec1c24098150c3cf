"""The pod runner against a fake API: real processes on pod IPs, status reports, stop on deletion."""

import base64
import pathlib
import random
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import kubeapi, nodes, pico, process, testbed, wait
from devcluster.podrunner import runner


class FakeApi:
    """Serves a node and a mutable pod list; records status patches and applied PortForwards."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.changed = threading.Event()

    def get(self, path: str) -> dict[str, Any]:
        if path == "/api/v1/nodes":
            return {"items": [nodes.manifest(1), nodes.manifest(2)]}
        if path == "/api/v1/pods":
            with self.lock:
                return {"items": list(self.pods.values()), "metadata": {"resourceVersion": "1"}}
        prefix = "/api/v1/namespaces/ns/secrets/"
        if path.startswith(prefix):
            with self.lock:
                data = self.secrets.get(path.removeprefix(prefix))
            if data is None:
                raise kubeapi.ApiError(404, "not found")
            return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        raise AssertionError(f"unexpected GET {path}")

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        assert method == "PATCH"
        assert body is not None
        if content_type == "application/apply-patch+yaml":
            with self.lock:
                self.applied.append((path, body))
            return body
        assert path.endswith("/status")
        with self.lock:
            self.patches.append((path, body["status"]))
        return {}

    def watch(self, path: str, timeout_seconds: int = 300) -> Iterator[dict[str, Any]]:
        # Ending the watch makes the runner list again, which is how changes reach it here.
        self.changed.wait(0.1)
        self.changed.clear()
        return iter(())

    def last_status(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = [st for path, st in self.patches if path.endswith(f"/pods/{name}/status")]
        return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pod(name: str, image: str, ip: str, args: list[str], policy: str = "Always") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": f"example.org/{image}:1",
        "args": args,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
    }
    if args:
        container["readinessProbe"] = {"tcpSocket": {"port": int(args[-1])}}
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": str(uuid.uuid4())},
        "spec": {
            "nodeName": nodes.name(1),
            "automountServiceAccountToken": False,
            "restartPolicy": policy,
            "containers": [container],
        },
        "status": {"podIP": ip, "phase": "Pending"},
    }


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


_DEVICE = """\
P: /devices/usb1
N: bus/usb/001/001
E: SUBSYSTEM=usb
E: DEVTYPE=usb_device
A: idVendor=1d6b
A: idProduct=0002

P: /devices/usb1/1-1
N: bus/usb/001/002
E: SUBSYSTEM=usb
E: DEVTYPE=usb_device
A: idVendor=20a0
A: idProduct=4230
"""

# Exits 0 only under umockdev (which sets UMOCKDEV_DIR for the process it runs).
_CHECK_UMOCKDEV = "import os; raise SystemExit(0 if os.environ.get('UMOCKDEV_DIR') else 1)"


@pytest.fixture
def pod_runner(fake: FakeApi, tmp_path: pathlib.Path) -> Iterator[runner.PodRunner]:
    device = tmp_path / "node-1.umockdev"
    device.write_text(_DEVICE)
    config = runner.Config(
        client=fake,
        server="https://127.0.0.1:1",
        ca_cert=tmp_path / "ca.crt",
        work_dir=tmp_path / "pods",
        entrypoints={
            "http": (sys.executable, "-m", "http.server"),
            "fails": (sys.executable, "-c", "raise SystemExit(3)"),
            "umockdev-check": (sys.executable, "-c", _CHECK_UMOCKDEV),
        },
        node_devices={nodes.name(1): device},
        poll_interval=0.05,
    )
    the_runner = runner.PodRunner(config)
    thread = threading.Thread(target=the_runner.run, daemon=True)
    thread.start()
    yield the_runner
    the_runner.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def _add(fake: FakeApi, pod: dict[str, Any]) -> None:
    with fake.lock:
        fake.pods[pod["metadata"]["uid"]] = pod
    fake.changed.set()


def _remove(fake: FakeApi, pod: dict[str, Any]) -> None:
    with fake.lock:
        del fake.pods[pod["metadata"]["uid"]]
    fake.changed.set()


def _answers(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


def _ready(fake: FakeApi, name: str) -> bool:
    status = fake.last_status(name)
    return (
        status is not None and {"type": "Ready", "status": "True"}.items() <= status["conditions"][-1].items()
    )


def test_pod_process_listens_on_the_pod_ip_and_is_reported_ready(
    fake: FakeApi, pod_runner: runner.PodRunner
) -> None:
    ip, port = f"127.1.1.{random.randint(2, 250)}", _free_port()
    _add(fake, _pod("web", "http", ip, ["--bind", "$(POD_IP)", str(port)]))
    wait.until(lambda: _ready(fake, "web"), 20, "the pod to be reported Ready")
    assert _answers(ip, port)
    status = fake.last_status("web")
    assert status is not None
    assert status["phase"] == "Running"


def test_a_pod_with_container_ports_gets_a_port_forward_to_its_ip(
    fake: FakeApi, pod_runner: runner.PodRunner
) -> None:
    ip, port = f"127.1.1.{random.randint(2, 250)}", _free_port()
    pod = _pod("web", "http", ip, ["--bind", "$(POD_IP)", str(port)])
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": port}, {"containerPort": 9}]
    _add(fake, pod)
    _add(fake, _pod("portless", "http", "127.1.1.1", ["--bind", "$(POD_IP)", str(_free_port())]))
    wait.until(lambda: _ready(fake, "web") and _ready(fake, "portless"), 20, "both pods Ready")
    with fake.lock:
        applied = list(fake.applied)
    assert [path.partition("?")[0] for path, _ in applied] == [
        "/apis/kwok.x-k8s.io/v1alpha1/namespaces/ns/portforwards/web"
    ]
    body = applied[0][1]
    assert body["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert body["spec"]["forwards"] == [
        {"ports": [p], "target": {"address": ip, "port": p}} for p in sorted((port, 9))
    ]


def test_deleted_pod_process_is_stopped(fake: FakeApi, pod_runner: runner.PodRunner) -> None:
    ip, port = f"127.1.1.{random.randint(2, 250)}", _free_port()
    pod = _pod("web", "http", ip, ["--bind", "$(POD_IP)", str(port)])
    _add(fake, pod)
    wait.until(lambda: _answers(ip, port), 20, "the process to listen")
    _remove(fake, pod)
    wait.until(lambda: not _answers(ip, port), 20, "the process to stop")


def test_failing_container_with_restart_policy_never_fails_the_pod(
    fake: FakeApi, pod_runner: runner.PodRunner
) -> None:
    _add(fake, _pod("once", "fails", "127.1.1.9", [], policy="Never"))

    def failed() -> bool:
        status = fake.last_status("once")
        return status is not None and status["phase"] == "Failed"

    wait.until(failed, 20, "the pod to fail")


def test_failing_container_with_restart_policy_always_is_restarted(
    fake: FakeApi, pod_runner: runner.PodRunner
) -> None:
    _add(fake, _pod("loop", "fails", "127.1.1.9", []))

    def restarted() -> bool:
        status = fake.last_status("loop")
        return status is not None and status["containerStatuses"][0]["restartCount"] >= 2

    wait.until(restarted, 20, "two restarts")


@pytest.mark.skipif(shutil.which("umockdev-run") is None, reason="umockdev is not installed")
def test_pods_on_a_node_with_a_device_description_run_under_umockdev(
    fake: FakeApi, pod_runner: runner.PodRunner
) -> None:
    _add(fake, _pod("probe", "umockdev-check", "127.1.1.9", [], policy="Never"))

    def finished() -> str | None:
        status = fake.last_status("probe")
        phase = status["phase"] if status else None
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait.until(finished, 20, "the pod to finish") == "Succeeded"


def test_changed_secret_reaches_the_running_pods_volume(
    fake: FakeApi, pod_runner: runner.PodRunner, tmp_path: pathlib.Path
) -> None:
    fake.secrets["pin"] = {"pin": "1111"}
    ip, port = f"127.1.1.{random.randint(2, 250)}", _free_port()
    pod = _pod("web", "http", ip, ["--bind", "$(POD_IP)", str(port)])
    pod["spec"]["volumes"] = [{"name": "pin", "secret": {"secretName": "pin"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "pin", "mountPath": "/etc/pin"}]
    _add(fake, pod)
    wait.until(lambda: _answers(ip, port), 20, "the process to listen")
    (pin_file,) = (tmp_path / "pods").glob("ns_web_*/volumes/pin/pin")
    assert pin_file.read_text() == "1111"
    with fake.lock:
        fake.secrets["pin"] = {"pin": "2222"}
    wait.until(lambda: pin_file.read_text() == "2222", 20, "the new PIN in the volume")


# --- hotplug testbeds

_SERIAL = "5e1a11ed0123abcd"
# Exits 0 only when the node's device, with its serial, shows in /sys (as umockdev presents it).
_CHECK = (
    "import pathlib, sys; "
    f"sys.exit(0 if pathlib.Path('{pico.SYS_PATH}/serial').read_text().strip() == '{_SERIAL}' else 1)"
)


def _testbed_pod(node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"probe-{node}", "namespace": "ns", "uid": str(uuid.uuid4())},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "example.org/check:1"}],
        },
        "status": {"podIP": "127.1.2.9", "phase": "Pending"},
    }


def test_pods_on_a_node_with_a_testbed_see_its_devices(tmp_path: pathlib.Path) -> None:
    node_with, node_without = nodes.name(2), nodes.name(1)
    driver = testbed.start_driver(tmp_path, node_with, timeout=20)
    description = tmp_path / "pico.umockdev"
    description.write_text(pico.description(_SERIAL))
    testbed.Testbed(tmp_path, node_with).add(description)
    fake = FakeApi()
    config = runner.Config(
        client=fake,
        server="https://127.0.0.1:1",
        ca_cert=tmp_path / "ca.crt",
        work_dir=tmp_path / "pods",
        entrypoints={"check": (sys.executable, "-c", _CHECK)},
        node_testbeds={node_with: testbed.root(tmp_path, node_with)},
        poll_interval=0.05,
    )
    the_runner = runner.PodRunner(config)
    thread = threading.Thread(target=the_runner.run, daemon=True)
    thread.start()
    try:
        for node in (node_with, node_without):
            pod = _testbed_pod(node)
            with fake.lock:
                fake.pods[pod["metadata"]["uid"]] = pod
            fake.changed.set()

        def phase(node: str) -> str | None:
            status = fake.last_status(f"probe-{node}")
            found = status["phase"] if status else None
            return found if found in ("Succeeded", "Failed") else None

        assert wait.until(lambda: phase(node_with), 30, "the pod with the testbed to finish") == "Succeeded"
        assert wait.until(lambda: phase(node_without), 30, "the pod without it to finish") == "Failed"
    finally:
        the_runner.stop()
        thread.join(timeout=30)
        process.stop(driver)
