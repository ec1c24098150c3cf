"""Sync passes of a device with one agent: a pass with no Secret yet learns the agent's state by reading the
copy it is going to write (one agent call, not two), and every other outcome is what a state call gives."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from hsm_common import constants
from hsm_manager.decide import sync
from hsm_manager.gateway import errors
from hsm_manager.operator import config, runtime

from .. import fakes
from .conftest import APP_NS, DEVICE, OPERATOR_NS, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"


@pytest.fixture
def one() -> fakes.FakeAgentClient:
    return fakes.FakeAgentClient("hsm-a")


@pytest.fixture
def rt(
    cfg: config.OperatorConfig, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> Iterator[runtime.Runtime]:
    directory = fakes.FakeDirectory()
    directory.add(DEVICE, one, namespace=OPERATOR_NS)
    wired = runtime.bootstrap(cfg, cluster, directory)  # type: ignore[arg-type]
    yield wired
    wired.stop()


def secret_data(cluster: fakes.FakeKube) -> dict[str, bytes] | None:
    found = cluster.stored("Secret", APP_NS, "db")
    return None if found is None else {k: base64.b64decode(v) for k, v in found["data"].items()}


def status(cluster: fakes.FakeKube) -> dict[str, object]:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    return dict(found.get("status") or {})


def test_a_new_secret_costs_one_read_and_no_state_call(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v1"}, None)
    one.write(PATH, {"k": b"v2"}, None)
    one.calls.clear()
    assert rt.syncer.run(KEY) == "written"
    assert one.calls == ["read"]
    assert secret_data(cluster) == {"k": b"v2"}
    assert (status(cluster)["syncStatus"], status(cluster)["hsmVersion"]) == ("InSync", 2)


def test_with_the_secret_in_sync_a_pass_asks_the_state_and_reads_nothing(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    one.calls.clear()
    assert rt.syncer.run(KEY) == "unchanged"
    assert one.calls == ["state"]


def test_a_changed_copy_of_an_existing_secret_is_asked_then_read(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v1"}, None)
    rt.syncer.run(KEY)
    one.write(PATH, {"k": b"v2"}, None)
    one.calls.clear()
    assert rt.syncer.run(KEY) == "written"
    assert one.calls == ["state", "read"]
    assert secret_data(cluster) == {"k": b"v2"}


def test_a_failing_read_is_reported_as_the_pass_reports_it_after_a_state_call(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v"}, None)
    one.failures["read"] = errors.Corrupt("hsm-a", "does not verify")
    one.calls.clear()
    assert rt.syncer.run(KEY) == "error"
    assert one.calls == ["read", "state", "read"]
    assert secret_data(cluster) is None
    assert status(cluster)["lastError"] == "reading from hsm-a failed: Corrupt"
    assert any(e.reason == "SyncFailed" and e.warning for e in cluster.events)


def test_a_copy_that_does_not_match_its_checksum_is_never_written(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v"}, None)
    state, _, metadata = one.paths[PATH]
    one.paths[PATH] = (state, {"k": b"tampered"}, metadata)
    assert rt.syncer.run(KEY) == "error"
    assert secret_data(cluster) is None
    assert status(cluster)["lastError"] == "data read from hsm-a does not match its checksum"


def test_a_deleted_path_without_a_secret_is_reported_deleted(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.write(PATH, {"k": b"v"}, None)
    one.delete(PATH)
    one.calls.clear()
    rt.syncer.run(KEY)
    assert one.calls == ["read", "state"]
    assert secret_data(cluster) is None
    assert status(cluster)["syncStatus"] == "Deleted"


def test_an_unreachable_agent_keeps_nothing_and_says_why(
    rt: runtime.Runtime, cluster: fakes.FakeKube, one: fakes.FakeAgentClient
) -> None:
    cluster.add(hsmsecret())
    one.down = True
    assert rt.syncer.run(KEY) == "error"
    conditions = status(cluster)["conditions"]
    assert isinstance(conditions, list)
    assert next(c["reason"] for c in conditions if c["type"] == "Ready") == sync.Reason.DEVICE_UNAVAILABLE
