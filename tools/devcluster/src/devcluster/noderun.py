"""One real node's supervisor: containerd, the images, kubelet, kube-proxy and the NetworkPolicy engine
(kube-router's firewall alone), in the node's namespaces.

Started by ``cluster.up`` inside the node's network namespace and a fresh private mount namespace
(``nsenter --net=… unshare --mount --propagation private``). It mounts the node's own directories over
``/var/lib``, ``/var/log`` and ``/run`` (so nothing the kubelet or containerd writes reaches the host's), puts
every process it starts into the node's cgroup, and on SIGTERM stops the kubelet, kube-proxy and
kube-router, then kills whatever is left in the cgroup (containers, shims, containerd) and removes it. When
its last process is gone the mount namespace, and with it every mount the node made, is gone too.

Usage: ``python -m devcluster.noderun SPEC.json``.
"""

import dataclasses
import json
import pathlib
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from . import cgroups, network, nodeconfig

KUBE_ROUTER_SETTLE = 60.0
"""Seconds after start in which kube-router may exit and is started again (the Node is not registered yet)."""
_STOPPED_FIRST = ("kubelet", "kube-proxy", "kube-router")
"""Stopped by SIGTERM before the rest of the node's cgroup is killed."""

_STOP = False
_RESTART_KUBELET = False
"""Set by SIGUSR1: restart the kubelet (as after an upgrade), keeping containerd and the containers."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """Everything the supervisor needs, written by ``cluster.up`` as JSON."""

    name: str
    cgroup: str
    root: str
    """``nodeconfig.NodeFiles`` root on the host."""
    bin_dir: str
    kubeconfig: str
    proxy_kubeconfig: str
    policy_kubeconfig: str
    """kube-router's: it reads pods, namespaces and NetworkPolicies."""
    node_ip: str
    binds: tuple[tuple[str, str], ...]
    """Extra (host directory, path in the node) bind mounts, made after the node's /var/lib is in place."""
    archives: tuple[str, ...]
    """Image archives to load into containerd before the kubelet starts."""

    @classmethod
    def load(cls, path: pathlib.Path) -> "Spec":
        """Read a spec file."""
        raw = json.loads(path.read_text())
        raw["binds"] = tuple(tuple(pair) for pair in raw["binds"])
        raw["archives"] = tuple(raw["archives"])
        return cls(**raw)

    def dump(self, path: pathlib.Path) -> None:
        """Write the spec file."""
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))


def _log(message: str) -> None:
    print(f"[node {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _on_term(_signum: int, _frame: FrameType | None) -> None:
    global _STOP
    _STOP = True


def _on_restart(_signum: int, _frame: FrameType | None) -> None:
    global _RESTART_KUBELET
    _RESTART_KUBELET = True


def _restart(
    spec: Spec, name: str, proc: subprocess.Popen[bytes], argv: list[str]
) -> subprocess.Popen[bytes]:
    """Stop a component as a node's systemd would on a restart, then start it again."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _log(f"{name} restarted on request")
    return _spawn(spec, name, argv)


def _mount_bind(source: pathlib.Path, target: pathlib.Path) -> None:
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)


def _set_net_sysctls() -> None:
    # /proc/sys/net belongs to the caller's network namespace: the node's, never the host's.
    pathlib.Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


def _kube_router_argv(spec: Spec, bins: pathlib.Path) -> list[str]:
    # Only the firewall: the bridge CNI already routes pods and kube-proxy serves Services. No health or
    # metrics port, so nothing listens that a test did not ask for.
    return [
        str(bins / "kube-router"),
        f"--kubeconfig={spec.policy_kubeconfig}",
        f"--hostname-override={spec.name}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        f"--service-cluster-ip-range={network.SERVICE_NETWORK}",
        "--health-port=0",
        "--metrics-port=0",
        "--v=1",
    ]


def _spawn(spec: Spec, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    files = nodeconfig.NodeFiles(pathlib.Path(spec.root))
    with (files.logs / f"{name}.log").open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Single-threaded supervisor, so preexec_fn is safe: the child joins the node's cgroup first.
            preexec_fn=lambda: cgroups.enter(spec.cgroup),
        )


def _wait_for_socket(path: pathlib.Path, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Until the Unix socket at path accepts a connection: the file appears at bind(), before listen(),
    and a client in between is refused (ctr failed so once)."""
    deadline = time.monotonic() + timeout
    while not _accepts(path):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before {path} accepted connections")
        if time.monotonic() > deadline or _STOP:
            raise RuntimeError(f"{what}: {path} did not accept connections within {timeout:.0f}s")
        time.sleep(0.05)


def _accepts(path: pathlib.Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _load_images(spec: Spec) -> None:
    for archive in spec.archives:
        started = time.monotonic()
        subprocess.run(
            [
                "ctr",
                "--address",
                nodeconfig.CONTAINERD_SOCKET,
                "--namespace",
                "k8s.io",
                "images",
                "import",
                archive,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _log(f"loaded {pathlib.Path(archive).name} in {time.monotonic() - started:.1f}s")


def run(spec: Spec) -> int:
    """Bring the node up, wait for SIGTERM (or a component's death), then take it down; the exit code."""
    files = nodeconfig.NodeFiles(pathlib.Path(spec.root))
    bins = pathlib.Path(spec.bin_dir)
    for source, target in (
        (files.var_lib, pathlib.Path("/var/lib")),
        (files.var_log, pathlib.Path("/var/log")),
        (files.run, pathlib.Path("/run")),
    ):
        _mount_bind(source, target)
    for bind_source, bind_target in spec.binds:
        _mount_bind(pathlib.Path(bind_source), pathlib.Path(bind_target))
    _set_net_sysctls()
    cgroups.create(spec.cgroup)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    try:
        procs["containerd"] = _spawn(
            spec, "containerd", ["containerd", "--config", str(files.etc / "containerd.toml")]
        )
        _wait_for_socket(pathlib.Path(nodeconfig.CONTAINERD_SOCKET), procs["containerd"], 30, "containerd")
        _load_images(spec)
        kubelet_argv = [
            str(bins / "kubelet"),
            f"--config={files.etc / 'kubelet.yaml'}",
            f"--kubeconfig={spec.kubeconfig}",
            f"--hostname-override={spec.name}",
            f"--node-ip={spec.node_ip}",
            "--v=1",
        ]
        procs["kubelet"] = _spawn(spec, "kubelet", kubelet_argv)
        procs["kube-proxy"] = _spawn(
            spec,
            "kube-proxy",
            [str(bins / "kube-proxy"), f"--config={files.etc / 'kube-proxy.yaml'}", "--v=1"],
        )
        procs["kube-router"] = _spawn(spec, "kube-router", _kube_router_argv(spec, bins))
        settle_by = time.monotonic() + KUBE_ROUTER_SETTLE
        _log("containerd, kubelet, kube-proxy and kube-router started")
        global _RESTART_KUBELET
        while not _STOP:
            if _RESTART_KUBELET:
                _RESTART_KUBELET = False
                procs["kubelet"] = _restart(spec, "kubelet", procs["kubelet"], kubelet_argv)
            for name, proc in procs.items():
                if proc.poll() is not None and name == "kube-router" and time.monotonic() < settle_by:
                    # It refuses to start before the kubelet has registered the Node with its address;
                    # restarted as its DaemonSet pod would be.
                    _log(f"kube-router exited with {proc.returncode} before the node registered; restarting")
                    time.sleep(1)
                    procs[name] = _spawn(spec, name, _kube_router_argv(spec, bins))
                elif proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}; see {files.logs / (name + '.log')}"
                    )
            time.sleep(0.2)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as err:
        _log(f"node failed: {err}")
        code = 1
    finally:
        for name in _STOPPED_FIRST:
            if name in procs and procs[name].poll() is None:
                procs[name].terminate()
        for name in _STOPPED_FIRST:
            if name in procs:
                try:
                    procs[name].wait(10)
                except subprocess.TimeoutExpired:
                    procs[name].kill()
        # Containers, shims and containerd: all of them are in the node's cgroup and nowhere else.
        cgroups.kill_and_remove(spec.cgroup)
        for proc in procs.values():
            proc.poll()
        _log("node stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m devcluster.noderun SPEC.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m devcluster.noderun SPEC.json", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    signal.signal(signal.SIGUSR1, _on_restart)
    return run(Spec.load(pathlib.Path(args[0])))


if __name__ == "__main__":
    sys.exit(main())
