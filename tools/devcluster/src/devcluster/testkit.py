"""What end-to-end tests hold on to: a cluster handle with the helpers they need.

Lives in the package rather than a conftest so test modules can import it (pytest's importlib mode
does not make conftest modules importable).
"""

import base64
import dataclasses
import http.client
import os
import pathlib
import re
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import yaml

from . import access, cluster, kubeapi, kubectl, realnodes

T = TypeVar("T")


class PollTimeout(AssertionError):
    """A polled condition did not come true in time (an AssertionError: the test fails, not errors)."""


def poll(condition: Callable[[], T], timeout: float, what: str, period: float = 0.05) -> T:
    """condition's first truthy result within timeout seconds.

    Unlike ``wait.until``, an exception from condition propagates (a failing call is the test's failure,
    not "not yet") and falsy results such as 0 or [] count as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise PollTimeout(f"timed out after {timeout} s waiting for {what}")
        time.sleep(period)


#: Annotation a test changes to make a pod's kubelet sync the pod (``syncing_pods``).
SYNC_ANNOTATION = "e2e.hsm.j5t.io/synced-at"


def syncing_pods(
    client: kubeapi.Client, namespace: str, pods: list[str], condition: Callable[[], T], every: float = 5.0
) -> Callable[[], T]:
    """condition for ``poll``, making the pods' kubelets sync the pods every ``every`` seconds while it is
    falsy.

    A kubelet brings a changed Secret into a pod's volume when it syncs the pod: periodically (every 60 to 90
    s) or when the pod changes. A changed annotation makes it sync the pod at once, so a test waiting for a
    container to see a new Secret waits seconds rather than a minute or more; the containers keep running and
    read the volume as they would.
    """
    synced = time.monotonic() - every

    def check() -> T:
        nonlocal synced
        result = condition()
        if not result and time.monotonic() - synced >= every:
            synced = time.monotonic()
            for name in pods:
                client.request(
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/pods/{name}",
                    {"metadata": {"annotations": {SYNC_ANNOTATION: f"{synced:.1f}"}}},
                    "application/merge-patch+json",
                )
        return result

    return check


def scrape(address: str, token: str | None, timeout: float = 10.0) -> tuple[int, str]:
    """``GET https://<address>/metrics`` as Prometheus does it: (status, body).

    With ``token`` as the bearer token (none: no Authorization header). The certificate is not verified
    here: these calls test the token checks, and a pod serves a self-signed certificate until the operator's
    metrics Secret reaches it (tests/e2e/test_scenario.py verifies the certificates with the published CA).
    OSError when nothing answers over TLS.
    """
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    except http.client.HTTPException as error:
        raise OSError(f"no HTTPS answer from {address}: {type(error).__name__}") from None
    finally:
        connection.close()


@dataclasses.dataclass
class Kube:
    """A cluster as the tests see it: an admin kubeconfig and client, plus helpers."""

    kubeconfig: pathlib.Path
    client: kubeapi.Client
    server: str
    ca_cert: pathlib.Path
    devcluster: cluster.Cluster | None
    """Set when the cluster is the local devcluster (process-level tests need it)."""
    _forwards: int = 0

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl as admin."""
        return kubectl.run(self.kubeconfig, *args, stdin=stdin)

    def apply_kustomization(self, directory: pathlib.Path) -> str:
        """``kubectl kustomize <dir>`` applied as admin."""
        return kubectl.apply_kustomization(self.kubeconfig, directory)

    def wait_crds_established(self, names: list[str], timeout: float = 30.0) -> None:
        """Return once the named CRDs serve."""
        access.wait_crds_established(self.client, names, timeout)

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: pathlib.Path, in_node: bool = False
    ) -> pathlib.Path:
        """A kubeconfig acting as the ServiceAccount, with a token minted by TokenRequest; ``in_node`` for a
        process run with ``in_node`` (it reaches the API server at its address inside the nodes)."""
        server = realnodes.in_cluster_server(self.server) if in_node else self.server
        return access.service_account_kubeconfig(self.client, server, self.ca_cert, namespace, name, path)

    def _run_dir(self) -> pathlib.Path:
        if self.devcluster is None:
            raise RuntimeError("only the local devcluster has node namespaces to run in")
        return self.devcluster.run_dir

    def in_node(self, argv: list[str], node: int = 1) -> list[str]:
        """``argv`` run inside a node's network namespace, where pod and Service addresses are reachable
        (a host process that talks to pods, as the operator does from its pod)."""
        return realnodes.in_node(self._run_dir(), argv, node)

    def forward(self, ip: str, port: int, node: int = 1) -> str:
        """``127.0.0.1:PORT`` on the host that reaches ``ip:port`` from inside a node (a pod, a Service's
        ClusterIP, or 127.0.0.1 of a process started with ``in_node``)."""
        self._forwards += 1
        name = f"forward-{os.getpid()}-{self._forwards}"
        return cluster.forward(self._run_dir(), name, ip, port, node)

    def softhsm_conf(self, node: str) -> pathlib.Path:
        """The host's SoftHSM2 configuration of ``node``'s token store (agent pods there see its tokens;
        call ``realnodes.give_tokens`` after making one)."""
        return realnodes.softhsm_store(self._run_dir(), node)


def from_kubeconfig(path: pathlib.Path, scratch: pathlib.Path, devcluster: cluster.Cluster | None) -> Kube:
    """A Kube for the cluster of an admin kubeconfig; ``scratch`` receives the CA as a file."""
    client = kubeapi.Client.from_kubeconfig(path)
    doc = yaml.safe_load(path.read_text())
    ca_cert = scratch / "ca.crt"
    ca_cert.write_bytes(base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]))
    return Kube(path, client, f"https://{client.host}:{client.port}", ca_cert, devcluster)


def log_tails(run_dir: pathlib.Path, lines: int = 40) -> str:
    """The last lines of every control-plane and pod log of a devcluster run."""
    parts = []
    logs = sorted(run_dir.glob("logs/*.log")) + sorted(run_dir.glob("nodes/*/logs/*.log"))
    logs += sorted(run_dir.glob("nodes/*/var-log/pods/*/*/*.log"))
    for log in logs:
        text = compact(log.read_text(errors="replace").splitlines())[-lines:]
        parts.append(f"--- {log.relative_to(run_dir)} ---\n" + "\n".join(text))
    return "\n".join(parts)


def compact(lines: list[str]) -> list[str]:
    """``lines`` with each run of lines that differ only in their numbers (a retry logged every 50 ms)
    shown as its first line and a count, so that one noisy log does not push the others out of a report."""
    out: list[str] = []
    shape, repeats = None, 0
    for line in [*lines, None]:
        this = None if line is None else re.sub(r"\d+", "0", line)
        if this is not None and this == shape:
            repeats += 1
            continue
        if repeats:
            out.append(f"[… {repeats} more like the line above]")
        if line is not None:
            out.append(line)
        shape, repeats = this, 0
    return out
