"""The Kubernetes cluster the end-to-end tests run against.

``E2E_KUBECONFIG`` (an existing cluster), else the local devcluster with two real nodes running the
images ``make images`` builds (the control plane is built on first use; a cold build takes a long while).
"""

import os
import pathlib
import sys
import uuid
from collections.abc import Generator, Iterator

import pytest

from devcluster import build, cluster, realnodes, testkit


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs a Kubernetes cluster (the devcluster unless E2E_KUBECONFIG)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testkit.Kube]:
    """The session's cluster (see the module docstring for how it is chosen)."""
    scratch = tmp_path_factory.mktemp("kube")
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        yield testkit.from_kubeconfig(pathlib.Path(external), scratch, None)
        return
    build.build()
    archives, sandbox = realnodes.image_archives()
    settings = cluster.Settings(run_dir=scratch / "devcluster", images=archives, sandbox_image=sandbox)
    running = cluster.up(settings)
    try:
        yield testkit.from_kubeconfig(running.kubeconfig, scratch, running)
    finally:
        # The operator tests' device plugins run in the nodes' namespaces but are the tests' processes: end
        # them before the nodes (operator_env is loaded only where an operator test ran).
        operator_env = sys.modules.get("operator_env")
        if operator_env is not None:
            operator_env.stop_node_plugins()
        cluster.down(running.run_dir)


@pytest.fixture
def namespace(kube: testkit.Kube) -> Iterator[str]:
    """A fresh namespace, deleted after the test (without waiting for it to go)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    kube.client.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def devcluster_run(kube: testkit.Kube) -> cluster.Cluster:
    """The running devcluster; tests of the devcluster's own processes skip on other providers."""
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster")
    return kube.devcluster


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # On failure, attach the control plane's and pods' log tails: the cause is usually in there.
    found = getattr(item, "funcargs", {}).get("kube")
    if report.failed and isinstance(found, testkit.Kube) and found.devcluster is not None:
        report.sections.append(("devcluster logs", testkit.log_tails(found.devcluster.run_dir)))
    return report
