"""kopf handlers called as kopf calls them, with a memo holding a runtime wired from fakes."""

from __future__ import annotations

import base64

import kopf
import pytest

from hsm_common import constants, models
from hsm_manager.operator import handlers, runtime, triggers

from .. import fakes
from ..polling import wait_until
from .conftest import APP_NS, DEVICE, OPERATOR_NS, hsmdevice, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"


@pytest.fixture
def memo(rt: runtime.Runtime) -> kopf.Memo:
    return handlers.memo_of(rt)


@pytest.fixture
def started(rt: runtime.Runtime, memo: kopf.Memo) -> runtime.Runtime:
    handlers.start(memo=memo)
    return rt


def secret_version(cluster: fakes.FakeKube) -> str | None:
    found = cluster.stored("Secret", APP_NS, "db")
    return None if found is None else found["metadata"]["annotations"][constants.ANNOTATION_HSM_VERSION]


def ready_reason(cluster: fakes.FakeKube) -> str:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db") or {}
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((str(c["reason"]) for c in conditions if c["type"] == "Ready"), "")


def changed(
    memo: kopf.Memo, spec: dict[str, object] | None = None, generation: int = 1, kind: str | None = None
) -> None:
    obj = hsmsecret()
    obj["spec"] |= spec or {}
    obj["metadata"] |= {"uid": "uid-db", "generation": generation}
    triggers_of(memo).hsmsecret(kind or "MODIFIED", obj)


def triggers_of(memo: kopf.Memo) -> triggers.ClusterTriggers:
    """The triggers the runtime's informers call with each HSMSecret and managed-Secret event."""
    rt = memo.get("runtime")
    assert isinstance(rt, runtime.Runtime)
    return rt.triggers


def test_a_handler_without_a_runtime_in_its_memo_says_so() -> None:
    with pytest.raises(RuntimeError, match="no runtime"):
        handlers.agent_pod_event(memo=kopf.Memo())


def test_a_new_hsmsecret_is_synced_by_the_workers(
    started: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    changed(memo)
    wait_until(lambda: secret_version(cluster) == "1", what="the Secret at version 1")
    assert started.backstop.tracked() == 1


def test_a_write_on_a_device_reaches_the_secret_through_its_watch_stream(
    started: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    directory.clients["hsm-a"].write(PATH, {"k": b"v1"}, None)
    changed(memo)
    wait_until(lambda: secret_version(cluster) == "1", what="the first sync")
    handlers.agent_pod_event(memo=memo)
    assert directory.invalidated == 1
    wait_until(lambda: started.watches.connected() == 2, what="both watch streams")
    directory.clients["hsm-b"].write(PATH, {"k": b"v2"}, None, version=2)
    wait_until(lambda: secret_version(cluster) == "2", what="the Secret at version 2")


def test_devices_going_away_show_as_device_unavailable_without_waiting_for_the_backstop(
    started: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    changed(memo)
    wait_until(lambda: secret_version(cluster) == "1", what="the first sync")
    started.refresh_watches()
    wait_until(lambda: all("watch" in a.calls for a in directory.clients.values()), what="both streams")
    for agent in directory.clients.values():
        agent.go_down()
    wait_until(lambda: ready_reason(cluster) == "DeviceUnavailable", what="DeviceUnavailable")
    assert secret_version(cluster) == "1"


def test_our_own_secret_write_coming_back_queues_nothing(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    written = cluster.stored("Secret", APP_NS, "db")
    rt.triggers.secret("MODIFIED", written or {})
    assert rt.queue.backlog() == 0


def test_an_edited_secret_is_queued_for_a_pass(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    directory.clients["hsm-a"].write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    edited = cluster.stored("Secret", APP_NS, "db") or {}
    edited["data"] = {"k": base64.b64encode(b"edited").decode()}
    edited["metadata"]["resourceVersion"] = "someone else's"
    rt.triggers.secret("MODIFIED", edited)
    assert rt.queue.backlog() == 1


def test_a_deleted_hsmdevice_leaves_its_hsmsecrets_unresolved(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube
) -> None:
    cluster.add(hsmsecret())
    rt.syncer.run(KEY)
    device = cluster.stored(constants.KIND_DEVICE, OPERATOR_NS, DEVICE)
    assert device is not None
    # kopf calls the handler while the HSMDevice waits for its finalizer, marked for deletion.
    device["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    cluster.add(device)
    handlers.device_deleted(namespace=OPERATOR_NS, name=DEVICE, meta=device["metadata"], memo=memo)
    assert rt.queue.backlog() == 1
    assert rt.syncer.run(KEY) == "invalid"
    assert rt.syncer.unresolved() == [KEY]


def test_a_new_hsmdevice_gets_its_pool_and_resolves_waiting_hsmsecrets(
    rt: runtime.Runtime, memo: kopf.Memo, cluster: fakes.FakeKube
) -> None:
    cluster.add(hsmsecret(device="late"))
    rt.syncer.run(KEY)
    device = cluster.add(hsmdevice("late"))
    handlers.device_changed(body=device, namespace=OPERATOR_NS, name="late", memo=memo)
    assert cluster.stored(constants.KIND_POOL, OPERATOR_NS, "late-pool") is not None
    assert rt.queue.backlog() == 1
    rt.syncer.run(KEY)
    assert rt.syncer.unresolved() == []


def test_a_deleted_hsmsecret_is_no_longer_checked(rt: runtime.Runtime, memo: kopf.Memo) -> None:
    changed(memo, {"syncInterval": 60})
    changed(memo, kind="DELETED")
    assert rt.backstop.tracked() == 0


def test_only_a_new_spec_generation_queues_a_pass(
    rt: runtime.Runtime, memo: kopf.Memo, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(rt.queue, "put", queued.append)
    changed(memo)
    changed(memo, kind="MODIFIED")  # a pass's own status patch: the same generation
    assert queued == [KEY]
    changed(memo, {"syncInterval": 60}, generation=2, kind="MODIFIED")
    assert queued == [KEY, KEY]


def test_cleanup_stops_the_runtime_and_closes_the_channels(
    started: runtime.Runtime, memo: kopf.Memo, directory: fakes.FakeDirectory
) -> None:
    handlers.shutdown(memo=memo)
    assert directory.closed


def test_the_pool_status_of_a_device_shows_its_phase(memo: kopf.Memo, cluster: fakes.FakeKube) -> None:
    device = cluster.stored(constants.KIND_DEVICE, OPERATOR_NS, DEVICE) or {}
    handlers.device_tick(body=device, namespace=OPERATOR_NS, name=DEVICE, memo=memo)
    pool = cluster.stored(constants.KIND_POOL, OPERATOR_NS, f"{DEVICE}-pool") or {}
    assert models.HSMPoolStatus.model_validate(pool["status"]).phase is not None


def test_a_managed_secret_gone_queues_a_pass_of_its_hsmsecret(rt: runtime.Runtime) -> None:
    """As the informer reports a Secret that a relist no longer shows: its name and labels only."""
    labels = {constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE, constants.LABEL_SECRET: "db"}
    rt.triggers.secret("DELETED", {"metadata": {"namespace": APP_NS, "name": "db", "labels": labels}})
    assert rt.queue.backlog() == 1
