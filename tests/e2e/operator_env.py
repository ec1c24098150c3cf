"""The operator's end-to-end environment, shared by tests/e2e/test_operator*.py and bench/sync.py.

The operator runs as a host subprocess (``python -m hsm_manager operator``) inside node-1's network
namespace, as it would in its pod, so it reaches agent pods by their pod IPs; it acts with a kubeconfig of
the hsm-manager ServiceAccount holding exactly the RBAC of deploy/kustomize/base/rbac/manager.yaml and
metrics.yaml. Metrics are read as the namespace's scraper ServiceAccount, bound to the reader role. Agents
are pods of the e2e agent image (with SoftHSM2) that the nodes' kubelets run from the Deployments the
operator creates, on SoftHSM2 tokens made here in the node's token store. Discovery is stood in for: its
pods run the inert sandbox image, and the test writes the report annotation onto them.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import yaml

from devcluster import (
    access,
    cluster,
    images,
    kubeapi,
    kubectl,
    nodeconfig,
    nodes,
    realnodes,
    softhsm,
    testbed,
    testkit,
)
from hsm_common import constants, report
from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "kustomize" / "base" / "crds"
RBAC = [ROOT / "deploy" / "kustomize" / "base" / "rbac" / name for name in ("manager.yaml", "metrics.yaml")]
ROLLOUT_RESTART_RBAC = ROOT / "deploy" / "kustomize" / "components" / "rollout-restart" / "rbac.yaml"
"""The opt-in grant to restart workloads (a component the e2e overlay enables)."""
SCRAPER = "metrics-scraper"
"""The ServiceAccount of each operator namespace that reads metrics (bound to the hsm-metrics-reader role)."""
E2E_LABEL = "hsm.j5t.io/e2e-namespace"
"""On the cluster-wide RBAC objects made for an operator namespace, so that they go with it."""
GROUP_PATH = f"/apis/{constants.API_VERSION}"
PIN = "246810"
SO_PIN = "13579246"
AGENT_IMAGE = "hsm-agent:e2e"
"""The agent image with SoftHSM2 that ``make images`` builds and the nodes load."""
INERT_DISCOVERY_IMAGE = images.PAUSE_IMAGE
"""Discovery pods run but do nothing: the tests write the discovery reports themselves."""
NODE_STORE = nodeconfig.HOST_DATA / "softhsm"
"""Each node's SoftHSM2 token store as its pods see it (``Kube.softhsm_conf`` makes it on the host)."""
OPERATOR_NODE = 1
"""The node whose network namespace the operator runs in."""
OPERATOR_NODE_NAME = nodes.name(OPERATOR_NODE)
_FREE_PORTS = (
    "import socket; s = [socket.socket() for _ in range({count})]; "
    "[x.bind(('127.0.0.1', 0)) for x in s]; print(*(x.getsockname()[1] for x in s))"
)


def free_ports(kube: testkit.Kube, count: int, node: int = OPERATOR_NODE) -> list[int]:
    """count distinct ports free on 127.0.0.1 inside the node's network namespace."""
    probe = [sys.executable, "-c", _FREE_PORTS.format(count=count)]
    found = subprocess.run(kube.in_node(probe, node), capture_output=True, text=True, check=True, timeout=30)
    return [int(port) for port in found.stdout.split()]


def get(kube: testkit.Kube, path: str) -> dict[str, Any] | None:
    """The object at path, None on 404."""
    try:
        return kube.client.get(path)
    except kubeapi.ApiError as exc:
        if exc.status == 404:
            return None
        raise


def rbac_for(namespace: str, suffix: str, extra: tuple[pathlib.Path, ...] = ()) -> str:
    """The manager and metrics RBAC (and the files extra) as kustomize would render them into namespace
    (cluster objects made unique and labelled with it), and a scraper ServiceAccount bound to the metrics
    reader role."""
    docs = [d for path in (*RBAC, *extra) for d in yaml.safe_load_all(path.read_text()) if d]
    docs += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SCRAPER}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": SCRAPER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "hsm-metrics-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": SCRAPER}],
        },
    ]
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = namespace
        else:
            doc["metadata"]["name"] += suffix
            doc["metadata"].setdefault("labels", {})[E2E_LABEL] = namespace
        if "roleRef" in doc:
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects", []):
            if subject["kind"] == "Group":
                # The agents' ServiceAccounts: the group of the operator namespace's.
                subject["name"] = f"system:serviceaccounts:{namespace}"
            else:
                subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


_SCRAPER_TOKENS: dict[str, str] = {}


def scraper_token(kube: testkit.Kube, namespace: str) -> str:
    """A token of the operator namespace's scraper, minted once: components cache the verdict on a token,
    so one token keeps the reviews out of what tests and benchmarks measure."""
    if namespace not in _SCRAPER_TOKENS:
        _SCRAPER_TOKENS[namespace] = access.service_account_token(kube.client, namespace, SCRAPER, 6 * 3600)
    return _SCRAPER_TOKENS[namespace]


#: Seconds a scrape answered 503 is asked again: the component could not have the token reviewed just then
#: (its TokenReview failed once in a benchmark, right after 10,000 writes), and a scraper asks again too.
SCRAPE_RETRY_SECONDS = 10.0


def metrics_text(kube: testkit.Kube, namespace: str, address: str) -> str:
    """The metrics at a host address (a forwarder to a component), read as the namespace's scraper;
    OSError while nothing answers there."""
    deadline = time.monotonic() + SCRAPE_RETRY_SECONDS
    while True:
        status, text = testkit.scrape(address, scraper_token(kube, namespace))
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if status != 200:
        raise RuntimeError(f"GET /metrics at {address} answered {status}: {text.strip()}")
    return text


def apply_crds(kube: testkit.Kube) -> None:
    kube.apply_kustomization(CRD_DIR)
    crds = [d["metadata"]["name"] for d in yaml.safe_load_all(kubectl.kustomize(CRD_DIR)) if d]
    kube.wait_crds_established(crds)


@dataclasses.dataclass
class Operator:
    """One operator process; restartable."""

    kube: testkit.Kube
    namespace: str
    kubeconfig: pathlib.Path
    log: pathlib.Path
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    """The metrics port inside node-1's network namespace (``metrics_address`` reaches it from the host)."""
    _forwards: dict[int, str] = dataclasses.field(default_factory=dict)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "HSM_MANAGER_"))}
        env["KUBECONFIG"] = str(self.kubeconfig)
        self.metrics_port, health_port = free_ports(self.kube, 2)
        command = [
            sys.executable, "-m", "hsm_manager", "operator", f"--namespace={self.namespace}",
            f"--metrics-port={self.metrics_port}", f"--health-listen=127.0.0.1:{health_port}",
            f"--discovery-image={INERT_DISCOVERY_IMAGE}", *self.extra_args,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            # nsenter execs the operator, so proc.pid is the operator's own (its CPU and RSS are read there).
            self.proc = subprocess.Popen(
                self.kube.in_node(command, OPERATOR_NODE), env=env, stderr=out, stdout=out
            )

    def metrics_text(self) -> str:
        """The operator's metrics, read as its namespace's scraper; OSError while it serves none yet."""
        return metrics_text(self.kube, self.namespace, self.metrics_address())

    def metrics_address(self) -> str:
        """``127.0.0.1:PORT`` on the host reaching the running operator's metrics port inside node-1."""
        if self.metrics_port not in self._forwards:
            self._forwards[self.metrics_port] = self.kube.forward(
                "127.0.0.1", self.metrics_port, OPERATOR_NODE
            )
        return self._forwards[self.metrics_port]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def cpu_seconds(self) -> float:
        """User and system CPU time the operator process used so far."""
        if self.proc is None:
            return 0.0
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident set size of the operator process."""
        if self.proc is None:
            return 0
        status = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else 0


def agent_args() -> tuple[str, ...]:
    """Operator flags for agents of the e2e image; their token store comes with the device (NodePlugins)."""
    return (f"--agent-image={AGENT_IMAGE}",)


DEVICE_NODE = "/dev/bus/usb/001/004"
"""The device node the tests' reports give every token (a stand-in made with mknod on each node)."""
DEVNODES = nodeconfig.HOST_DATA / testbed.DEVNODES
"""The nodes' device-node root (the e2e overlay's too)."""


class NodePlugins:
    """discovery's device plugin code on every node (node_plugin.py in the node's namespaces), offering what
    the tests report: the resource the agents request, the token store's mount and ``SOFTHSM2_CONF``.

    ``store`` is the token store the allocations mount, with its ``softhsm2.conf`` (default: each node's own).
    """

    def __init__(self, kube: testkit.Kube, store: pathlib.Path = NODE_STORE) -> None:
        self._kube = kube
        self.store = store
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, report.DeviceEntry]] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def _state(self, node: str) -> pathlib.Path:
        return _run_dir(self._kube) / "e2e-plugins" / f"{node}.json"

    def _start(self, node: str) -> None:
        run_dir = _run_dir(self._kube)
        testbed.make_device_node(run_dir, node, testbed.DeviceNode(DEVICE_NODE, 189, 3))
        running = cluster.load(run_dir)
        if running is None:
            raise RuntimeError(f"no devcluster in {run_dir}")
        supervisor = next(p for p in running.processes if p.name == node)
        state = self._state(node)
        state.parent.mkdir(parents=True, exist_ok=True)
        log = (run_dir / "logs" / f"e2e-plugins-{node}.log").open("ab")
        argv = [
            "nsenter", f"--target={supervisor.pid}", "--mount", "--net", "--",
            sys.executable, str(pathlib.Path(__file__).with_name("node_plugin.py")), str(state),
            constants.DEVICE_PLUGIN_DIR, str(DEVNODES), str(self.store),
            f"SOFTHSM2_CONF={self.store / 'softhsm2.conf'}",
        ]  # fmt: skip
        self._procs[node] = subprocess.Popen(argv, stdout=log, stderr=log)

    def offer(self, node: str, device: str, entry: report.DeviceEntry | None) -> None:
        """Make node's plugins offer entry for device (None: the HSMDevice is gone)."""
        with self._lock:
            if node not in self._procs:
                self._start(node)
            entries = self._entries.setdefault(node, {})
            if entry is None:
                entries.pop(device, None)
            else:
                entries[device] = entry
            content = report.DeviceReport(
                node_name=node, report_time=datetime.datetime.now(datetime.UTC), devices=dict(entries)
            )
            state = self._state(node)
            tmp = state.with_suffix(".tmp")
            tmp.write_text(json.dumps(content.to_wire()))
            os.replace(tmp, state)

    def stop(self) -> None:
        with self._lock:
            for proc in self._procs.values():
                proc.terminate()
            for proc in self._procs.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._procs.clear()


_PLUGINS: dict[pathlib.Path, NodePlugins] = {}


def _run_dir(kube: testkit.Kube) -> pathlib.Path:
    if kube.devcluster is None:
        raise RuntimeError("the operator tests run discovery's device plugins on devcluster nodes only")
    return kube.devcluster.run_dir


def node_plugins(kube: testkit.Kube, store: pathlib.Path | None = None) -> NodePlugins:
    """The cluster's NodePlugins, started on first use; stop_node_plugins ends them with the session.

    ``store``: the token store they must offer (None: whichever they offer, each node's own by default).
    """
    plugins = _PLUGINS.setdefault(_run_dir(kube), NodePlugins(kube, store or NODE_STORE))
    if store is not None and plugins.store != store:
        raise RuntimeError(f"the node plugins already offer the token store {plugins.store}, not {store}")
    return plugins


def stop_node_plugins() -> None:
    for plugins in _PLUGINS.values():
        plugins.stop()
    _PLUGINS.clear()


def start_operator(
    kube: testkit.Kube,
    tmp: pathlib.Path,
    extra_args: tuple[str, ...] = (),
    store: pathlib.Path | None = None,
    extra_rbac: tuple[pathlib.Path, ...] = (),
) -> Operator:
    """A fresh operator namespace with the manager RBAC (and the RBAC files extra_rbac) and a PIN Secret,
    and the operator running there (in node-1's network namespace); its agents get the SoftHSM2 store
    through the device (NodePlugins): ``store`` when given (a directory the nodes share with the host),
    else each node's own."""
    node_plugins(kube, store)
    apply_crds(kube)
    namespace = f"e2e-op-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube.kubectl("apply", "-f", "-", stdin=rbac_for(namespace, f"-{namespace}", extra_rbac))
    kube.client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "pin"}, "stringData": {"pin": PIN}},
    )
    # The discovery DaemonSet's pods run as hsm-discovery (deploy/kustomize/base/rbac/discovery.yaml); its
    # grants do not matter here, since the pods run an inert image, but pods cannot be made without it.
    kube.client.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "hsm-discovery"}}
    )
    config = kube.service_account_kubeconfig(
        namespace, "hsm-manager", tmp / f"{namespace}.kubeconfig", in_node=True
    )
    op = Operator(kube, namespace, config, tmp / f"{namespace}-operator.log", (*agent_args(), *extra_args))
    op.start()
    # The operator is up once it has made the Secrets of its start-up, the MAC key last.
    for secret in ("hsm-manager-ca", "hsm-manager-client-tls", "hsm-manager-mac-key"):
        path = f"/api/v1/namespaces/{namespace}/secrets/{secret}"
        testkit.poll(functools.partial(get, kube, path), 60, f"the operator's Secret {secret}")
    return op


def remove_operator(op: Operator) -> None:
    op.stop()
    op.kube.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"{E2E_LABEL}={op.namespace}")
    op.kube.client.request("DELETE", f"/api/v1/namespaces/{op.namespace}")


# ---------------------------------------------------------------- SoftHSM2 tokens the agent pods use


def make_token(conf: pathlib.Path, label: str) -> str:
    """Initialise a token labelled label in the store of the host configuration conf, owned by the agents'
    user; returns its serial number."""
    serial = softhsm.init_token(conf, label, PIN, SO_PIN)
    realnodes.give_tokens(conf)
    return serial


def delete_token(conf: pathlib.Path, label: str) -> None:
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--delete-token", "--token", label], env=env, capture_output=True, timeout=30
    )


# ---------------------------------------------------------------- devices, reports, agents


def device_manifest(namespace: str, name: str, token_label: str) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_DEVICE,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deviceType": "Generic",
            "discovery": {"usb": [{"vendorId": "20a0", "productId": "4230"}]},
            "pkcs11": {
                "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
                "tokenLabel": token_label,
                "pinSecret": {"name": "pin", "key": "pin"},
            },
        },
    }


def hsmsecret_manifest(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_SECRET,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def report_entry(serial: str | None) -> report.DeviceEntry:
    """What a node found for a device: its token with serial (nothing when serial is None)."""
    now = datetime.datetime.now(datetime.UTC)
    found = []
    if serial is not None:
        found.append(
            report.ReportedDevice(
                device_path=DEVICE_NODE, serial_number=serial, vendor_id="20a0",
                product_id="4230", manufacturer="SoftHSM", product="e2e token", available=True, last_seen=now,
            )
        )  # fmt: skip
    return report.DeviceEntry(devices=found)


def report_annotation(node: str, device: str, serial: str | None) -> str:
    """A discovery report of node: device's token with serial (none when serial is None)."""
    content = report.DeviceReport(
        node_name=node,
        report_time=datetime.datetime.now(datetime.UTC),
        devices={device: report_entry(serial)},
    )
    return json.dumps(content.to_wire(), sort_keys=True, separators=(",", ":"))


def discovery_pods(kube: testkit.Kube, namespace: str, device: str) -> list[dict[str, Any]]:
    selector = f"{constants.LABEL_COMPONENT}=discovery,{constants.LABEL_DEVICE}={device}"
    found = kube.client.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    return [p for p in found["items"] if p.get("spec", {}).get("nodeName")]


def report_device(kube: testkit.Kube, namespace: str, device: str, serial: str, node: str) -> None:
    """Every discovery pod of device reports; the one on node has the token, the others nothing."""
    pods = testkit.poll(
        lambda: found if len(found := discovery_pods(kube, namespace, device)) >= 2 else [],
        60,
        "discovery pods",
    )
    for pod in pods:
        pod_node = pod["spec"]["nodeName"]
        found = serial if pod_node == node else None
        node_plugins(kube).offer(pod_node, device, report_entry(found))
        text = report_annotation(pod_node, device, found)
        kube.client.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}",
            {"metadata": {"annotations": {constants.ANNOTATION_DEVICE_REPORT: text}}},
            content_type="application/merge-patch+json",
        )


def ready_agent_pod(kube: testkit.Kube, namespace: str, device: str) -> dict[str, Any] | None:
    """The Running and Ready agent pod of device, if any."""
    selector = f"{constants.LABEL_COMPONENT}=agent,{constants.LABEL_DEVICE}={device}"
    pods: list[dict[str, Any]] = kube.client.get(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}"
    )["items"]
    for pod in pods:
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        if ready and status.get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def agent_stub(kube: testkit.Kube, namespace: str, pod: dict[str, Any]) -> hsm_pb2_grpc.HSMAgentStub:
    """A stub to the agent pod over mTLS, presenting the manager's client certificate."""
    data = kube.client.get(f"/api/v1/namespaces/{namespace}/secrets/hsm-manager-client-tls")["data"]
    tls = channel.ClientTLS(
        base64.b64decode(data["ca.crt"]),
        base64.b64decode(data["tls.crt"]),
        base64.b64decode(data["tls.key"]),
        server_name=pod["metadata"]["labels"]["app.kubernetes.io/instance"],
    )
    # The pod IP is reached from inside node-1; the test process dials a forwarder on the host's loopback.
    address = kube.forward(pod["status"]["podIP"], constants.PORT_AGENT_GRPC, OPERATOR_NODE)
    return channel.agent_stub(channel.open_channel(address, tls))


class Heartbeat(threading.Thread):
    """Re-reports the device every period seconds, as discovery does: reports older than the pool's
    grace period (5 minutes) are stale, and the operator would then remove the agent."""

    def __init__(self, kube: testkit.Kube, namespace: str, device: str, serial: str, node: str) -> None:
        super().__init__(name=f"heartbeat-{device}", daemon=True)
        self._args = (kube, namespace, device, serial, node)
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(30.0):
            try:
                report_device(*self._args)
            except Exception:  # noqa: S112 - the namespace may be going; the next beat retries
                continue

    def stop(self) -> None:
        self._stop.set()


@dataclasses.dataclass
class Device:
    """A device with its token, reported on a node, with a Ready agent."""

    name: str
    label: str
    serial: str
    node: str
    conf: pathlib.Path
    """The host's SoftHSM2 configuration of the store holding the token."""
    stub: hsm_pb2_grpc.HSMAgentStub
    heartbeat: Heartbeat


def pool_phase(kube: testkit.Kube, namespace: str, device: str) -> str | None:
    pool = get(kube, f"{GROUP_PATH}/namespaces/{namespace}/hsmpools/{device}-pool") or {}
    phase: str | None = (pool.get("status") or {}).get("phase")
    return phase


def deploy_device(
    op: Operator, name: str, node: str = OPERATOR_NODE_NAME, conf: pathlib.Path | None = None
) -> Device:
    """Token → HSMDevice → report → pool Ready → agent pod Ready → a stub to it.

    The token goes into the store of the host configuration conf, by default node's own store (the one
    ``agent_args`` gives the agents by default).
    """
    kube, namespace = op.kube, op.namespace
    conf = conf or kube.softhsm_conf(node)
    label = f"e2e-{uuid.uuid4().hex[:8]}"
    serial = make_token(conf, label)
    heartbeat: Heartbeat | None = None
    try:
        kube.client.request(
            "POST", f"{GROUP_PATH}/namespaces/{namespace}/hsmdevices", device_manifest(namespace, name, label)
        )
        report_device(kube, namespace, name, serial, node)
        heartbeat = Heartbeat(kube, namespace, name, serial, node)
        heartbeat.start()
        testkit.poll(lambda: pool_phase(kube, namespace, name) == "Ready", 60, "the pool Ready")
        pod = testkit.poll(
            lambda: ready_agent_pod(kube, namespace, name) or {}, 90, "the agent pod Running and Ready"
        )
    except BaseException:
        # Not handed to the caller yet, so nobody else would remove the token or stop the reports.
        if heartbeat is not None:
            heartbeat.stop()
        delete_token(conf, label)
        raise
    return Device(name, label, serial, node, conf, agent_stub(kube, namespace, pod), heartbeat)


_FORWARDS: dict[tuple[str, int], str] = {}


def forwarded(kube: testkit.Kube, ip: str, port: int) -> str:
    """A host address reaching ip:port inside the operator's node, one forwarder per target."""
    if (ip, port) not in _FORWARDS:
        _FORWARDS[ip, port] = kube.forward(ip, port, OPERATOR_NODE)
    return _FORWARDS[ip, port]


def agent_counts(
    kube: testkit.Kube, namespace: str, device: str, metric: str = "hsm_agent_pkcs11_calls_total"
) -> dict[str, float]:
    """A counter of the device's Ready agent pod (its /metrics), summed by its first label's value: by
    default the PKCS#11 calls by operation (``probe`` is the agent's own token-presence check)."""
    pod = ready_agent_pod(kube, namespace, device)
    if pod is None:
        raise RuntimeError(f"no Ready agent pod of {device}")
    address = forwarded(kube, pod["status"]["podIP"], constants.PORT_METRICS)
    text = metrics_text(kube, namespace, address)
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, _, value = line.rpartition(" ")
            first = labels.split('="', 1)[1].split('"', 1)[0]
            counts[first] = counts.get(first, 0.0) + float(value)
    return counts


# ---------------------------------------------------------------- HSMSecrets against one operator and device
