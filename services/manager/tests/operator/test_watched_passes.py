"""Passes that events start work from what the watches delivered; the backstop's, from the API server."""

from __future__ import annotations

import kopf
import pytest

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.operator import config, handlers, runtime

from .. import fakes
from ..polling import wait_until
from .conftest import APP_NS, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"


@pytest.fixture
def memo(rt: runtime.Runtime) -> kopf.Memo:
    return handlers.memo_of(rt)


def watched(memo: kopf.Memo, obj: kube.Obj) -> None:
    """The HSMSecret informer delivers obj."""
    rt = memo.get("runtime")
    assert isinstance(rt, runtime.Runtime)
    rt.triggers.hsmsecret("MODIFIED", obj)


def sync_status(cluster: fakes.FakeKube) -> str:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db") or {}
    return str((found.get("status") or {}).get("syncStatus"))


def test_a_pass_of_a_watched_hsmsecret_reads_nothing_from_the_api_server(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    watched(memo, cluster.add(hsmsecret()))
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    cluster.reads.clear()  # the operator's own Secrets, read at its start
    cluster.calls.clear()
    assert rt.syncer.run(KEY) == "written"
    assert cluster.reads == []
    assert cluster.calls == [("create", "Secret", "db"), ("patch_status", constants.KIND_SECRET, "db")]


def test_a_secret_the_watch_has_not_shown_is_read_when_creating_it_conflicts(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    watched(memo, cluster.add(hsmsecret()))
    agent = directory.clients["hsm-a"]
    agent.write(PATH, {"k": b"v1"}, None)
    rt.syncer.run(KEY)
    rt.syncer.secrets.gone(APP_NS, "db")  # the watch has not (yet) shown the Secret
    agent.write(PATH, {"k": b"v2"}, None)
    assert rt.syncer.run(KEY) == "written"
    found = cluster.stored("Secret", APP_NS, "db")
    assert found is not None
    assert found["metadata"]["annotations"][constants.ANNOTATION_HSM_VERSION] == "2"
    assert ("get", "Secret", "db") in cluster.reads


def test_the_backstop_pass_restores_a_secret_whose_deletion_the_watch_missed(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    watched(memo, cluster.add(hsmsecret()))
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    cluster.delete("Secret", APP_NS, "db")  # no DELETED event reaches the operator
    assert rt.syncer.run(KEY) == "unchanged"  # what an event-started pass sees: the watched Secret
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert cluster.stored("Secret", APP_NS, "db") is not None


def test_a_status_the_watch_has_not_shown_yet_is_still_replaced(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    watched(memo, cluster.add(hsmsecret()))
    agents = [directory.clients[name] for name in ("hsm-a", "hsm-b")]
    agents[0].write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    in_sync = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert in_sync is not None
    watched(memo, in_sync)  # the watch is at InSync and stays there
    for agent in agents:
        agent.down = True
    rt.syncer.run(KEY)
    assert sync_status(cluster) == "Error"
    for agent in agents:
        agent.down = False
    rt.syncer.run(KEY)  # InSync again: equal to the watched body, not to what the last patch wrote
    assert sync_status(cluster) == "InSync"


def test_a_secret_that_is_not_ours_is_read_before_the_token_on_later_passes(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    watched(memo, cluster.add(hsmsecret()))
    cluster.add({"kind": "Secret", "metadata": {"name": "db", "namespace": APP_NS}, "data": {}})
    agent = directory.clients["hsm-a"]
    agent.write(PATH, {"k": b"v"}, None)
    assert rt.syncer.run(KEY) == "error"
    reads = agent.calls.count("read")
    assert rt.syncer.run(KEY) == "error"
    assert agent.calls.count("read") == reads
    untouched = cluster.stored("Secret", APP_NS, "db")
    assert untouched is not None
    assert untouched["data"] == {}
    assert "labels" not in untouched["metadata"]


def test_a_restarted_operator_lists_the_managed_secrets_before_its_first_pass(
    cfg: config.OperatorConfig, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    """The Secret exists and is in sync: the restart's pass neither reads the token nor writes."""
    first = runtime.bootstrap(cfg, cluster, directory)  # type: ignore[arg-type]
    first.syncer.hsmsecrets.saw(cluster.add(hsmsecret()))
    agent = directory.clients["hsm-a"]
    version = agent.write(PATH, {"k": b"v"}, None)
    first.syncer.run(KEY)
    first.certificates.check()  # what its start did: the restart finds the served certificates current
    first.stop()
    again = runtime.bootstrap(cfg, cluster, directory)  # type: ignore[arg-type]
    changes, reads = list(cluster.calls), agent.calls.count("read")
    cluster.list_delay["Secret"] = 0.3
    again.start()
    try:
        wait_until(lambda: again.syncer.in_sync_at(KEY, PATH, version), what="the restart's pass")
    finally:
        again.stop()
    assert cluster.calls == changes
    assert agent.calls.count("read") == reads
