"""The Kubernetes cluster the end-to-end tests run against, and helpers to act on it.

Provider, in order: ``E2E_KUBECONFIG`` (an existing cluster), a reachable Docker daemon (testcontainers'
K3s module), else the local devcluster (built on first use; a cold build takes a long while).
"""

import dataclasses
import os
import pathlib
import shutil
import sys
import uuid
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from devcluster import access, cluster, kubeapi, kubectl
from devcluster import build as devbuild

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "deploy" / "kustomize" / "base" / "crds"

# A stand-in image the pod runner runs as `python -m http.server`, so the runner can be tested before
# the project's own console scripts exist.
TEST_HTTP_IMAGE = "hsm-test-http"
TEST_RUNNER_COMMANDS = (f"{TEST_HTTP_IMAGE}={sys.executable} -m http.server",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs a Kubernetes cluster (the devcluster unless E2E_KUBECONFIG)"
    )
    config.addinivalue_line("markers", "devcluster: exercises the devcluster itself, not any cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@dataclasses.dataclass(frozen=True)
class Kube:
    """A cluster as the tests see it: an admin kubeconfig and client, plus helpers."""

    kubeconfig: pathlib.Path
    client: kubeapi.Client
    server: str
    ca_cert: pathlib.Path
    devcluster: cluster.Cluster | None
    """Set when the cluster is the local devcluster (process-level tests need it)."""

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl as admin."""
        return kubectl.run(self.kubeconfig, *args, stdin=stdin)

    def apply_kustomization(self, directory: pathlib.Path) -> str:
        """``kubectl kustomize <dir>`` applied as admin."""
        return kubectl.apply_kustomization(self.kubeconfig, directory)

    def wait_crds_established(self, names: list[str], timeout: float = 30.0) -> None:
        """Return once the named CRDs serve."""
        access.wait_crds_established(self.client, names, timeout)

    def service_account_kubeconfig(self, namespace: str, name: str, path: pathlib.Path) -> pathlib.Path:
        """A kubeconfig acting as the ServiceAccount, with a token minted by TokenRequest."""
        return access.service_account_kubeconfig(
            self.client, self.server, self.ca_cert, namespace, name, path
        )


def _from_kubeconfig(path: pathlib.Path, tmp: pathlib.Path, devcluster: cluster.Cluster | None) -> Kube:
    client = kubeapi.Client.from_kubeconfig(path)
    # The CA travels embedded in the kubeconfig; the ServiceAccount kubeconfigs need it as a file.
    ca_cert = tmp / "ca.crt"
    ca_cert.write_bytes(client_ca_pem(path))
    return Kube(path, client, f"https://{client.host}:{client.port}", ca_cert, devcluster)


def client_ca_pem(path: pathlib.Path) -> bytes:
    """The CA certificate embedded in a kubeconfig."""
    import base64

    import yaml

    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])


def _docker_reachable() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return host.startswith("unix://") and pathlib.Path(host.removeprefix("unix://")).exists()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """The session's cluster (see the module docstring for how it is chosen)."""
    tmp = tmp_path_factory.mktemp("kube")
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        yield _from_kubeconfig(pathlib.Path(external), tmp, None)
        return
    if _docker_reachable() and shutil.which("docker"):
        from testcontainers.k3s import K3SContainer  # type: ignore[import-not-found]

        with K3SContainer() as k3s:
            path = tmp / "k3s.kubeconfig"
            path.write_text(k3s.config_yaml())
            yield _from_kubeconfig(path, tmp, None)
        return
    devbuild.build()
    settings = cluster.Settings(run_dir=tmp / "devcluster", runner_commands=TEST_RUNNER_COMMANDS)
    running = cluster.up(settings)
    try:
        yield _from_kubeconfig(running.kubeconfig, tmp, running)
    finally:
        cluster.down(running.run_dir)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace, deleted after the test (without waiting for it to go)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    kube.client.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def devcluster_run(kube: Kube) -> cluster.Cluster:
    """The running devcluster; tests of the devcluster's own processes skip on other providers."""
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster")
    return kube.devcluster


def _log_tails(run_dir: pathlib.Path, lines: int = 40) -> str:
    parts = []
    for log in sorted(run_dir.glob("logs/*.log")) + sorted(run_dir.glob("podrunner/pods/*/*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.relative_to(run_dir)} ---\n" + "\n".join(text))
    return "\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # On failure, attach the control plane's and pods' log tails: the cause is usually in there.
    if report.failed and "kube" in getattr(item, "funcargs", {}):
        found: Kube = item.funcargs["kube"]  # type: ignore[attr-defined]
        if found.devcluster is not None:
            report.sections.append(("devcluster logs", _log_tails(found.devcluster.run_dir)))
    return report
