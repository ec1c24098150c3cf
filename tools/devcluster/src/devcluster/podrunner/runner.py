"""The reconcile loop: pods on kwok nodes with a runner image become local processes, and back."""

import dataclasses
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from devcluster import kubeapi, kubeconfig

from . import forwards, podwatch, probes, spec, status

log = logging.getLogger("devcluster.podrunner")

# Variables of the runner's own environment that must not leak into pods: the pod gets its own identity.
_PRIVATE_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
_PROBE_PERIOD = 1.0
# How often running pods' Secret/ConfigMap volumes are refreshed (the kubelet takes up to a minute).
_VOLUME_SYNC_PERIOD = 2.0
# Longest SIGTERM grace given to a pod's process, whatever terminationGracePeriodSeconds says: tests wait.
_MAX_GRACE = 10.0


@dataclasses.dataclass(frozen=True)
class Config:
    """What the runner runs and where."""

    client: podwatch.Api
    server: str
    ca_cert: pathlib.Path
    work_dir: pathlib.Path
    """Per-pod directories (volumes, kubeconfig, process log) live under here."""
    entrypoints: Mapping[str, tuple[str, ...]]
    """Image name → command standing in for the image's entrypoint."""
    node_devices: Mapping[str, pathlib.Path] = dataclasses.field(default_factory=dict)
    """Node name → umockdev device description to run that node's pods under."""
    node_testbeds: Mapping[str, pathlib.Path] = dataclasses.field(default_factory=dict)
    """Node name → runtime umockdev testbed directory that node's pods see (``devcluster.testbed``)."""
    poll_interval: float = 0.2


@dataclasses.dataclass
class _Container:
    """Mutable bookkeeping of one pod's process, owned by the reconcile thread."""

    uid: str
    namespace: str
    name: str
    pod_dir: pathlib.Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: str | None = None
    start_time: str = dataclasses.field(default_factory=status.now)
    next_start: float = 0.0
    next_probe: float = 0.0
    next_volume_sync: float = 0.0
    grace: float = 10.0
    last_exit: int | None = None
    finished_at: str | None = None
    ready: bool = False
    ready_since: str = dataclasses.field(default_factory=status.now)
    waiting_reason: str | None = None
    message: str | None = None
    phase: str = "Running"
    reported: dict[str, Any] | None = None


class PodRunner:
    """Watches pods and keeps one process per eligible pod; ``run`` blocks until ``stop``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._containers: dict[str, _Container] = {}
        self._stopping = threading.Event()
        self._cache = podwatch.PodCache(config.client, self._stopping)

    def _eligible(self, pod: Mapping[str, Any], kwok_nodes: set[str]) -> bool:
        containers = pod["spec"].get("containers", [])
        return (
            pod["spec"].get("nodeName") in kwok_nodes
            and bool(containers)
            and spec.image_name(containers[0]["image"]) in self.config.entrypoints
            and "deletionTimestamp" not in pod["metadata"]
            and bool(pod.get("status", {}).get("podIP"))
        )

    # --- Kubernetes lookups for the spec translation --------------------------------------------------------
    def _secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            return spec.b64_data(self.config.client.get(f"/api/v1/namespaces/{namespace}/secrets/{name}"))
        except kubeapi.ApiError as err:
            if err.status == 404:
                return None
            raise

    def _configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            cm = self.config.client.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except kubeapi.ApiError as err:
            if err.status == 404:
                return None
            raise
        data: dict[str, str] = cm.get("data") or {}
        return data

    def _minter(self, pod: Mapping[str, Any]) -> spec.TokenMinter:
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"

        def mint(audience: str | None, expiration: int | None) -> str:
            body: dict[str, Any] = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": expiration or 86400,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                },
            }
            if audience:
                body["spec"]["audiences"] = [audience]
            path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
            token: str = self.config.client.request("POST", path, body)["status"]["token"]
            return token

        return mint

    # --- process lifecycle --------------------------------------------------------------------------------
    def _start(self, pod: Mapping[str, Any], box: _Container) -> None:
        container = pod["spec"]["containers"][0]
        box.pod_dir.mkdir(parents=True, exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        mint = self._minter(pod)
        try:
            plan = spec.launch(
                pod,
                self.config.entrypoints[spec.image_name(container["image"])],
                box.pod_dir,
                base_env,
                self._secret,
                self._configmap,
                mint,
            )
        except (spec.SpecError, kubeapi.ApiError) as err:
            box.waiting_reason, box.message = "CreateContainerConfigError", str(err)
            box.next_start = time.monotonic() + 2.0
            return
        for directory in plan.dirs:
            directory.mkdir(parents=True, exist_ok=True)
        for path, content in plan.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        env = dict(plan.env)
        if pod["spec"].get("automountServiceAccountToken", True):
            # Clients in the pod find their ServiceAccount identity through KUBECONFIG; the in-cluster path
            # /var/run/secrets/... cannot be rewritten inside client libraries.
            env["KUBECONFIG"] = str(
                kubeconfig.write(
                    box.pod_dir / "kubeconfig",
                    kubeconfig.for_token(
                        self.config.server, self.config.ca_cert, mint(None, None), box.namespace
                    ),
                )
            )
        argv = list(plan.argv)
        device = self.config.node_devices.get(pod["spec"]["nodeName"])
        if device is not None:
            argv = ["umockdev-run", "--device", str(device), "--", *argv]
        bed = self.config.node_testbeds.get(pod["spec"]["nodeName"])
        if bed is not None:
            argv = ["umockdev-wrapper", *argv]
            env["UMOCKDEV_DIR"] = str(bed)
        logfile = box.pod_dir / f"{container['name']}.log"
        with logfile.open("ab") as out:
            out.write(f"--- start {status.now()} argv={argv}\n".encode())
            out.flush()
            try:
                box.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=box.pod_dir,
                    start_new_session=True,
                )
            except OSError as err:
                box.waiting_reason, box.message = "RunContainerError", str(err)
                box.next_start = time.monotonic() + 2.0
                return
        box.started_at = status.now()
        box.next_volume_sync = time.monotonic() + _VOLUME_SYNC_PERIOD
        box.waiting_reason = box.message = None
        log.info("event=started pod=%s/%s pid=%d", box.namespace, box.name, box.proc.pid)

    def _kill(self, box: _Container, grace: float) -> None:
        proc = box.proc
        if proc is None:
            return
        for sig, wait_for in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_for)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait(timeout=5.0)
        box.proc = None
        log.info("event=stopped pod=%s/%s pid=%d", box.namespace, box.name, proc.pid)

    def _check_exit(self, pod: Mapping[str, Any], box: _Container) -> None:
        if box.proc is None or box.proc.poll() is None:
            return
        code = box.proc.returncode
        box.proc, box.last_exit, box.finished_at, box.ready = None, code, status.now(), False
        policy = pod["spec"].get("restartPolicy", "Always")
        log.info("event=exited pod=%s/%s code=%d", box.namespace, box.name, code)
        if status.should_restart(policy, code):
            box.restarts += 1
            box.waiting_reason = "CrashLoopBackOff"
            box.next_start = time.monotonic() + status.backoff(box.restarts)
        else:
            box.phase = "Succeeded" if code == 0 else "Failed"

    def _report(self, pod: Mapping[str, Any], box: _Container) -> None:
        container = pod["spec"]["containers"][0]
        if box.proc is None:
            ready = False
        elif time.monotonic() >= box.next_probe:
            # Probe about once a second, not on every pass: each probe is a connection to the process.
            ready = probes.ready(container, pod["status"]["podIP"])
            box.next_probe = time.monotonic() + _PROBE_PERIOD
        else:
            ready = box.ready
        if ready != box.ready:
            box.ready, box.ready_since = ready, status.now()
        state = status.ContainerState(
            name=container["name"],
            image=container["image"],
            pid=box.proc.pid if box.proc else None,
            ready=box.ready,
            restart_count=box.restarts,
            started_at=box.started_at,
            waiting_reason=box.waiting_reason,
            message=box.message,
            last_exit_code=box.last_exit,
            finished_at=box.finished_at,
            phase=box.phase,
        )
        wanted = status.pod_status(state, box.start_time, box.ready_since)
        if wanted == box.reported:
            return
        path = f"/api/v1/namespaces/{box.namespace}/pods/{box.name}/status"
        try:
            self.config.client.request(
                "PATCH", path, {"status": wanted}, content_type="application/merge-patch+json"
            )
            box.reported = wanted
        except kubeapi.ApiError as err:
            log.warning("event=status_failed pod=%s/%s error=%s", box.namespace, box.name, err)

    def _sync_volumes(self, pod: Mapping[str, Any], box: _Container) -> None:
        """Rewrite Secret and ConfigMap volume files whose source changed, as the kubelet does.

        Each changed file is replaced by rename, so a reader never sees half a file (the agent re-reads
        its PIN file only when the Secret changes).
        """
        box.next_volume_sync = time.monotonic() + _VOLUME_SYNC_PERIOD
        for volume in pod["spec"].get("volumes", []):
            if "secret" not in volume and "configMap" not in volume:
                continue
            try:
                files = spec.volume_files(pod, volume, self._secret, self._configmap, self._minter(pod)) or {}
            except (spec.SpecError, kubeapi.ApiError) as err:
                log.warning("event=volume_sync_failed pod=%s/%s error=%s", box.namespace, box.name, err)
                continue
            root = box.pod_dir / "volumes" / volume["name"]
            for rel, content in files.items():
                target = root / rel
                if target.exists() and target.read_bytes() == content:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                scratch = target.with_name(f".{target.name}.tmp")
                scratch.write_bytes(content)
                os.replace(scratch, target)
                log.info("event=volume_updated pod=%s/%s file=%s", box.namespace, box.name, target)

    def _publish_forwards(self, pod: Mapping[str, Any]) -> None:
        try:
            forwards.publish(self.config.client, pod)
        except (kubeapi.ApiError, OSError) as err:
            # The pod runs all the same; only `kubectl port-forward` to it will fail.
            meta = pod["metadata"]
            log.warning("event=port_forward_failed pod=%s/%s error=%s", meta["namespace"], meta["name"], err)

    def _forget(self, uid: str) -> None:
        box = self._containers.pop(uid)
        self._kill(box, grace=box.grace)
        # Secret material must not outlive the pod; the process log stays for debugging.
        shutil.rmtree(box.pod_dir / "volumes", ignore_errors=True)
        (box.pod_dir / "kubeconfig").unlink(missing_ok=True)

    def reconcile(self) -> None:
        """One pass: start, check, restart, report or stop every pod's process."""
        kwok_nodes = self._cache.kwok_nodes()
        pods = {uid: p for uid, p in self._cache.snapshot().items() if self._eligible(p, kwok_nodes)}
        for uid in list(self._containers):
            if uid not in pods:
                self._forget(uid)
        for uid, pod in pods.items():
            meta = pod["metadata"]
            box = self._containers.get(uid)
            if box is None:
                pod_dir = self.config.work_dir / f"{meta['namespace']}_{meta['name']}_{uid[:8]}"
                box = self._containers[uid] = _Container(uid, meta["namespace"], meta["name"], pod_dir)
                box.grace = min(_MAX_GRACE, float(pod["spec"].get("terminationGracePeriodSeconds", 30)))
                self._publish_forwards(pod)
            self._check_exit(pod, box)
            if box.proc is None and box.phase == "Running" and time.monotonic() >= box.next_start:
                self._start(pod, box)
            elif box.proc is not None and time.monotonic() >= box.next_volume_sync:
                self._sync_volumes(pod, box)
            self._report(pod, box)

    def run(self, ready_file: pathlib.Path | None = None, sync_timeout: float = 30.0) -> None:
        """Reconcile until ``stop``; touch ``ready_file`` once the first pod list arrived."""
        self._cache.start()
        if not self._cache.wait_synced(sync_timeout):
            raise RuntimeError("pod list did not arrive in time")
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.touch()
        try:
            while not self._stopping.is_set():
                try:
                    self.reconcile()
                except Exception:
                    log.exception("event=reconcile_failed")
                self._stopping.wait(self.config.poll_interval)
        finally:
            for uid in list(self._containers):
                self._forget(uid)

    def stop(self) -> None:
        """Ask ``run`` to stop every process and return."""
        self._stopping.set()


def server_of(kubeconfig_path: pathlib.Path) -> str:
    """The API server URL of a client (used to build the pods' kubeconfigs)."""
    client = kubeapi.Client.from_kubeconfig(kubeconfig_path)
    return urllib.parse.urlunsplit(("https", f"{client.host}:{client.port}", "", "", ""))
