"""Starts and stops one local cluster: etcd → kube-apiserver → controller-manager → scheduler → nodes.

The nodes are real: kubelet, containerd and kube-proxy in network and mount namespaces of their own and a
cgroup each (``realnodes``, ``noderun``), running images loaded from archives.
"""

import dataclasses
import functools
import json
import os
import pathlib
import shutil
import signal
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence

from . import (
    components,
    hosthygiene,
    ipblock,
    kubeapi,
    kubeconfig,
    netforward,
    network,
    pki,
    ports,
    process,
    realnodes,
    testbed,
    versions,
    wait,
)

STATE_FILE = "state.json"


class StartError(RuntimeError):
    """A component did not become ready; the message carries its log tail."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to run a cluster."""

    run_dir: pathlib.Path
    """Holds PKI, etcd data, logs, kubeconfigs, the nodes' files and the state file; one cluster per
    directory."""
    node_count: int = 2
    """Number of nodes; node N's pods get 10.244.N.0/24 (``network``)."""
    testbed_nodes: tuple[str, ...] = ()
    """Nodes that get a runtime umockdev testbed (``testbed.Testbed``), mounted where their pods find it:
    devices can be plugged in and out while the cluster runs."""
    images: tuple[pathlib.Path, ...] = ()
    """Image archives every node loads before its kubelet starts (the sandbox image among them)."""
    sandbox_image: str = ""
    """containerd's sandbox ("pause") image; one of ``images``."""
    timeout: float = 60.0
    """Seconds each component gets to become ready."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A running cluster, as recorded in its state file."""

    run_dir: pathlib.Path
    server: str
    kubeconfig: pathlib.Path
    processes: tuple[process.Started, ...]

    def env(self) -> dict[str, str]:
        """Environment variables that point kubectl and clients at this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    def client(self) -> kubeapi.Client:
        """An admin client."""
        return kubeapi.Client.from_kubeconfig(self.kubeconfig)

    def node_names(self) -> list[str]:
        """Names of the cluster's nodes."""
        return [n["metadata"]["name"] for n in self.client().get("/api/v1/nodes")["items"]]


def default_run_dir() -> pathlib.Path:
    """The run directory the CLI uses unless told otherwise."""
    return versions.cache_root() / "run" / "default"


def _save(cluster: Cluster) -> None:
    state = {
        "server": cluster.server,
        "kubeconfig": str(cluster.kubeconfig),
        "processes": [
            {
                "name": p.name,
                "pid": p.pid,
                "log": str(p.log),
                "argv": list(p.argv),
                "start_ticks": p.start_ticks,
            }
            for p in cluster.processes
        ],
    }
    tmp = cluster.run_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, cluster.run_dir / STATE_FILE)


def load(run_dir: pathlib.Path) -> Cluster | None:
    """The cluster recorded in ``run_dir``, or None when there is none."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    procs = tuple(
        process.Started(
            name=p["name"],
            pid=p["pid"],
            log=pathlib.Path(p["log"]),
            # States written by older versions lack these; such processes then count as gone.
            argv=tuple(p.get("argv", ())),
            start_ticks=p.get("start_ticks", -1),
        )
        for p in state["processes"]
    )
    return Cluster(run_dir, state["server"], pathlib.Path(state["kubeconfig"]), procs)


def _insecure_get(url: str) -> str:
    # Component health endpoints use self-signed serving certs; only reachability is checked here.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:  # noqa: S310 (fixed http(s) URLs)
        body: bytes = resp.read()
        return body.decode()


def _await(started: process.Started, check: Callable[[], object], timeout: float, what: str) -> None:
    def ready() -> bool:
        if not process.is_alive(started):
            raise StartError(f"{started.name} exited:\n{process.log_tail(started)}")
        return bool(check())

    try:
        wait.until(ready, timeout, what)
    except wait.TimeoutExpiredError as err:
        if isinstance(err.__cause__, StartError):
            raise err.__cause__ from None
        raise StartError(f"{err}\n--- {started.log} ---\n{process.log_tail(started)}") from None


def _node_ready(client: kubeapi.Client, name: str) -> bool:
    node = client.get(f"/api/v1/nodes/{name}")
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def up(settings: Settings, bin_dir: pathlib.Path | None = None) -> Cluster:
    """Start a cluster in ``settings.run_dir`` and return once every component is ready.

    On failure everything started so far is stopped again and the error names the component.
    """
    existing = load(settings.run_dir)
    if existing and any(process.is_alive(p) for p in existing.processes):
        raise StartError(f"a cluster is already running in {settings.run_dir}; run `down` first")
    bins = bin_dir or versions.bin_dir()
    missing = [b for b in versions.BINARIES if not os.access(bins / b, os.X_OK)]
    if missing:
        raise StartError(f"binaries missing in {bins}: {missing}; run `python -m devcluster build`")
    if os.geteuid() != 0:
        raise StartError("the nodes need root (network and mount namespaces, cgroups)")
    run = settings.run_dir
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    logs = run / "logs"
    certs = pki.Paths.under(run / "pki")
    pki.create(certs, extra_server_ips=(network.KUBERNETES_SERVICE_IP, network.APISERVER_IP))
    p = components.Ports(*(ports.free_port() for _ in range(5)))
    server = f"https://127.0.0.1:{p.apiserver}"
    admin = kubeconfig.write(
        run / "kubeconfig",
        kubeconfig.for_certificate(server, certs.ca_cert, certs.admin_cert, certs.admin_key),
    )
    started: list[process.Started] = []
    cluster = Cluster(run, server, admin, ())

    def launch(
        name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, pass_fds: Sequence[int] = ()
    ) -> process.Started:
        proc = process.start(name, argv, logs / f"{name}.log", env=env, cwd=run, pass_fds=pass_fds)
        started.append(proc)
        _save(dataclasses.replace(cluster, processes=tuple(started)))
        return proc

    t0 = time.monotonic()
    block = 0
    try:
        block, lock_fd = ipblock.claim()
        try:
            # etcd holds the claim on the address block from now on: it lives as long as the cluster.
            etcd = launch("etcd", components.etcd(bins, run, p), pass_fds=(lock_fd,))
        finally:
            os.close(lock_fd)
        (run / "pod-block").write_text(f"{block}\n")
        hosthygiene.before_nodes(block)
        realnodes.create_network(block, settings.node_count)
        ready_file = run / "netforward.json"
        forwarder = launch(
            "netforward", realnodes.forwarder_argv(block, settings.node_count, p.apiserver, ready_file)
        )
        _await(forwarder, ready_file.exists, settings.timeout, "forwarder")
        apiserver_extra = realnodes.apiserver_args(run, block, certs)
        _await(
            etcd,
            lambda: '"true"' in _insecure_get(f"http://127.0.0.1:{p.etcd_client}/health"),
            settings.timeout,
            "etcd health",
        )
        api = launch(
            "kube-apiserver", _with_flags(components.apiserver(bins, run, p, certs), apiserver_extra)
        )
        client = kubeapi.Client.from_kubeconfig(admin)
        _await(api, lambda: client.text("GET", "/readyz", timeout=5) == "ok", settings.timeout, "readyz")
        cm = launch("kube-controller-manager", components.controller_manager(bins, admin, p, certs))
        sched = launch("kube-scheduler", components.scheduler(bins, admin, p))
        # Before the nodes: a real node mounts its testbed when it starts.
        for node_name in settings.testbed_nodes:
            started.append(testbed.start_driver(run, node_name, settings.timeout))
            _save(dataclasses.replace(cluster, processes=tuple(started)))
        node_names = _start_nodes(settings, run, block, bins, p.apiserver, certs, client, launch)
        _await(
            cm,
            lambda: _insecure_get(f"https://127.0.0.1:{p.controller_manager}/healthz") == "ok",
            settings.timeout,
            "controller-manager healthz",
        )
        # Pods cannot be created before the serviceaccount controller made the namespace's default SA.
        _await(
            cm,
            lambda: client.get("/api/v1/namespaces/default/serviceaccounts/default"),
            settings.timeout,
            "default ServiceAccount",
        )
        _await(
            sched,
            lambda: _insecure_get(f"https://127.0.0.1:{p.scheduler}/healthz") == "ok",
            settings.timeout,
            "scheduler healthz",
        )
        node_procs = {proc.name: proc for proc in started}
        for node_name in node_names:
            # A node loads the images before its kubelet registers: that takes a while on a cold start.
            _await(
                node_procs[node_name],
                functools.partial(_node_ready, client, node_name),
                settings.timeout * 4,
                f"node {node_name} Ready",
            )
    except BaseException:
        for proc in reversed(started):
            process.stop(proc, grace=_grace(proc))
        if block:
            hosthygiene.after_nodes(block)
        raise
    print(f"devcluster up in {time.monotonic() - t0:.1f}s: {server}", file=sys.stderr)
    return dataclasses.replace(cluster, processes=tuple(started))


Launch = Callable[..., process.Started]


def _with_flags(argv: list[str], flags: list[str]) -> list[str]:
    """``argv`` with each ``--name=value`` of ``flags`` replacing a flag of the same name, or added."""
    names = {flag.partition("=")[0] for flag in flags}
    return [arg for arg in argv if arg.partition("=")[0] not in names] + flags


def _grace(proc: process.Started) -> float:
    # A node supervisor stops its kubelet, then every container: give it longer than a plain process.
    return 40.0 if proc.name.startswith("node-") else 10.0


def _start_nodes(
    settings: Settings,
    run: pathlib.Path,
    block: int,
    bins: pathlib.Path,
    api_port: int,
    certs: pki.Paths,
    client: kubeapi.Client,
    launch: Launch,
) -> list[str]:
    wait.until(
        lambda: client.get("/api/v1/namespaces/default/services/kubernetes"),
        settings.timeout,
        "the kubernetes Service",
    )
    realnodes.publish_apiserver(client, api_port)
    node_list = network.nodes(block, settings.node_count)
    for node in node_list:
        # Registered ahead of its kubelet, with the pod range its CNI configuration hands out.
        client.request("POST", "/api/v1/nodes", realnodes.node_object(node))
        data = realnodes.data_dir(run, node.name)
        data.mkdir(parents=True, exist_ok=True)
        binds = [(data, pathlib.Path("/var/lib/hsm-devcluster"))]
        if node.name in settings.testbed_nodes:
            binds.append((testbed.root(run, node.name), pathlib.Path("/var/lib/hsm-devcluster/umockdev")))
        spec_file = realnodes.prepare(
            run, node, certs, bins, api_port, settings.sandbox_image, settings.images, tuple(binds)
        )
        launch(node.name, realnodes.supervisor_argv(node, spec_file))
    return [node.name for node in node_list]


def restart_kubelet(run_dir: pathlib.Path, node: str) -> None:
    """Restart ``node``'s kubelet (its supervisor does it on SIGUSR1); containers keep running."""
    running = load(run_dir)
    supervisor = next((p for p in running.processes if p.name == node), None) if running else None
    if supervisor is None or not process.is_alive(supervisor):
        raise StartError(f"node {node} is not running in {run_dir}")
    os.kill(supervisor.pid, signal.SIGUSR1)


def forward(run_dir: pathlib.Path, name: str, ip: str, port: int, node: int = 1) -> str:
    """``HOST:PORT`` on the host's loopback that reaches ``ip:port`` as seen from inside a real node.

    A Service's ClusterIP works too: kube-proxy's rules in the node's namespace translate it. The forwarder
    becomes one of the cluster's processes (``down`` stops it).
    """
    found = load(run_dir)
    if found is None:
        raise StartError(f"no cluster in {run_dir}")
    block = int((run_dir / "pod-block").read_text())
    node_ns = pathlib.Path("/run/netns") / network.Node(block, node).netns
    rule = netforward.Forward(
        listen=netforward.Endpoint("127.0.0.1", 0), target=netforward.Endpoint(ip, port, node_ns)
    )
    ready_file = run_dir / f"{name}.json"
    started = process.start(name, netforward.argv([rule], ready_file), run_dir / "logs" / f"{name}.log")
    _save(dataclasses.replace(found, processes=(*found.processes, started)))
    _await(started, ready_file.exists, 30, f"forwarder {name}")
    listening = netforward.listening(netforward.read_ready(ready_file), rule)
    return f"{listening.host}:{listening.port}"


def forwarded(run_dir: pathlib.Path, name: str) -> str | None:
    """``HOST:PORT`` of the forwarder ``name`` that ``forward`` started, None when there is none."""
    try:
        ready = netforward.read_ready(run_dir / f"{name}.json")
    except FileNotFoundError:
        return None
    return next(iter(ready.values()), None)


def down(run_dir: pathlib.Path) -> list[process.Started]:
    """Stop every process of the cluster in ``run_dir`` (last started first); return what was stopped."""
    cluster = load(run_dir)
    if cluster is None:
        return []
    for proc in reversed(cluster.processes):
        process.stop(proc, grace=_grace(proc))
    block_file = run_dir / "pod-block"
    if block_file.exists():
        # Whatever a killed supervisor left (containers, cgroups, namespaces) and the kubelet's sysctls.
        hosthygiene.after_nodes(int(block_file.read_text()))
    return list(cluster.processes)


def status(run_dir: pathlib.Path) -> dict[str, bool]:
    """Which of the cluster's processes are alive."""
    cluster = load(run_dir)
    if cluster is None:
        return {}
    return {p.name: process.is_alive(p) for p in cluster.processes}


def _component(found: Cluster, name: str) -> process.Started:
    for proc in found.processes:
        if proc.name == name:
            return proc
    raise KeyError(f"no component {name}; have {[p.name for p in found.processes]}")


def stop_component(run_dir: pathlib.Path, name: str) -> None:
    """Stop one component (fault injection: e.g. the API server goes away)."""
    found = load(run_dir)
    if found is None:
        raise StartError(f"no cluster in {run_dir}")
    process.stop(_component(found, name))


def start_component(run_dir: pathlib.Path, name: str, timeout: float = 60.0) -> Cluster:
    """Start a stopped component again with its original command line (same ports, same data).

    Returns once it is running, and for the API server once ``/readyz`` answers ok. The environment is
    the caller's, not the original one.
    """
    found = load(run_dir)
    if found is None:
        raise StartError(f"no cluster in {run_dir}")
    old = _component(found, name)
    if process.is_alive(old):
        raise StartError(f"{name} is still running (pid {old.pid})")
    new = process.start(name, old.argv, old.log, cwd=run_dir)
    updated = dataclasses.replace(
        found, processes=tuple(new if p.name == name else p for p in found.processes)
    )
    _save(updated)
    if name == "kube-apiserver":
        client = updated.client()
        _await(new, lambda: client.text("GET", "/readyz", timeout=5) == "ok", timeout, "readyz")
    else:
        _await(new, lambda: True, timeout, f"{name} to run")
    return updated


def restart_component(run_dir: pathlib.Path, name: str, timeout: float = 60.0) -> Cluster:
    """Stop and start one component."""
    stop_component(run_dir, name)
    return start_component(run_dir, name, timeout)
