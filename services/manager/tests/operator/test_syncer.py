"""One sync pass against in-memory agents and API server: what the Secret and the status end up as."""

from __future__ import annotations

import base64
from typing import Any

import prometheus_client
import pytest

from hsm_common import constants
from hsm_manager.decide import model, sync
from hsm_manager.gateway import errors
from hsm_manager.operator import runtime, syncer

from .. import fakes
from .conftest import APP_NS, hsmdevice, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"


def secret_data(cluster: fakes.FakeKube, name: str = "db") -> dict[str, bytes] | None:
    found = cluster.stored("Secret", APP_NS, name)
    if found is None:
        return None
    return {k: base64.b64decode(v) for k, v in found["data"].items()}


def status(cluster: fakes.FakeKube) -> dict[str, Any]:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    result: dict[str, Any] = found.get("status") or {}
    return result


def reason(cluster: fakes.FakeKube) -> str:
    return str(next(c["reason"] for c in status(cluster)["conditions"] if c["type"] == "Ready"))


def agent(directory: fakes.FakeDirectory, name: str) -> fakes.FakeAgentClient:
    return directory.clients[name]


def at(version: int, updated_at: str) -> model.PathState:
    return model.PathState(version, updated_at=updated_at, writer="api")


def test_an_absent_secret_is_created_from_the_newest_copy(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"old"}, None)
    agent(directory, "hsm-b").write(PATH, {"k": b"old"}, None)
    agent(directory, "hsm-b").write(PATH, {"k": b"new"}, None)
    assert rt.syncer.run(KEY) == "written"
    assert secret_data(cluster) == {"k": b"new"}
    assert (status(cluster)["syncStatus"], status(cluster)["hsmVersion"]) == ("InSync", 2)
    assert cluster.reasons() == []  # the status says it; an Event per creation would flood a cold start


def test_a_second_pass_without_changes_writes_nothing(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    before = list(cluster.calls)
    assert rt.syncer.run(KEY) == "unchanged"
    assert cluster.calls == before


def test_equal_versions_publish_the_later_write_whichever_device_holds_it(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").put(PATH, {"k": b"later"}, at(3, "2026-01-01T00:00:02.000000Z"))
    agent(directory, "hsm-b").put(PATH, {"k": b"earlier"}, at(3, "2026-01-01T00:00:01.000000Z"))
    rt.syncer.run(KEY)
    assert secret_data(cluster) == {"k": b"later"}
    agent(directory, "hsm-a").put(PATH, {"k": b"earlier"}, at(3, "2026-01-01T00:00:01.000000Z"))
    agent(directory, "hsm-b").put(PATH, {"k": b"later"}, at(3, "2026-01-01T00:00:02.000000Z"))
    rt.syncer.run(KEY)
    assert secret_data(cluster) == {"k": b"later"}


def test_one_unreachable_device_does_not_block_the_other(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").down = True
    agent(directory, "hsm-b").write(PATH, {"k": b"v"}, None)
    assert rt.syncer.run(KEY) == "written"
    assert secret_data(cluster) == {"k": b"v"}


def test_no_reachable_device_keeps_the_secret_and_says_why(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    for name in ("hsm-a", "hsm-b"):
        agent(directory, name).down = True
    assert rt.syncer.run(KEY) == "error"
    assert secret_data(cluster) == {"k": b"v"}
    assert reason(cluster) == sync.Reason.DEVICE_UNAVAILABLE


def test_an_agent_whose_certificate_is_refused_is_named_with_the_reason_in_the_status(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").failures["state"] = errors.Untrusted("hsm-a", "its TLS certificate has expired")
    agent(directory, "hsm-b").down = True
    assert rt.syncer.run(KEY) == "error"
    assert reason(cluster) == sync.Reason.DEVICE_UNAVAILABLE
    assert status(cluster)["lastError"] == (
        "no device answered (hsm-a: its TLS certificate has expired; hsm-b: Unavailable); the Secret is kept"
    )


def test_a_failed_read_keeps_the_secret_and_records_a_warning(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    source = agent(directory, "hsm-a")
    source.write(PATH, {"k": b"v"}, None)
    source.failures["read"] = errors.Corrupt("hsm-a", "does not verify")
    assert rt.syncer.run(KEY) == "error"
    assert secret_data(cluster) is None
    assert any(e.reason == "SyncFailed" and e.warning for e in cluster.events)


def test_a_tombstone_deletes_our_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    agent(directory, "hsm-a").delete(PATH)
    rt.syncer.run(KEY)
    assert secret_data(cluster) is None
    assert status(cluster)["syncStatus"] == "Deleted"


def test_a_secret_that_is_not_ours_is_never_overwritten(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    foreign = {"kind": "Secret", "type": "Opaque", "metadata": {"name": "db", "namespace": APP_NS}}
    cluster.add({**foreign, "data": {"k": base64.b64encode(b"theirs").decode()}})
    agent(directory, "hsm-a").write(PATH, {"k": b"ours"}, None)
    rt.syncer.run(KEY)
    assert secret_data(cluster) == {"k": b"theirs"}
    assert reason(cluster) == sync.Reason.CONFLICT


def test_a_changed_secret_type_recreates_the_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"tls.crt": b"c", "tls.key": b"k"}, None)
    rt.syncer.run(KEY)
    cluster.add(hsmsecret(secretType="kubernetes.io/tls"))
    rt.syncer.run(KEY)
    recreated = cluster.stored("Secret", APP_NS, "db")
    assert recreated is not None
    assert recreated["type"] == "kubernetes.io/tls"
    assert ("delete", "Secret", "db") in cluster.calls


def test_an_unknown_device_is_an_invalid_spec_until_it_appears(
    rt: runtime.Runtime, cluster: fakes.FakeKube
) -> None:
    cluster.add(hsmsecret(device="elsewhere"))
    assert rt.syncer.run(KEY) == "invalid"
    assert reason(cluster) == sync.Reason.INVALID
    assert rt.syncer.unresolved() == [KEY]


def test_a_device_on_the_api_server_the_handlers_have_not_registered_yet_is_not_an_invalid_spec(
    rt: runtime.Runtime, cluster: fakes.FakeKube
) -> None:
    """An HSMSecret applied together with its HSMDevice: the pass may come before the device's handler."""
    cluster.add(hsmdevice("late"))
    cluster.add(hsmsecret(device="late"))
    assert rt.syncer.run(KEY) == "error"
    assert reason(cluster) == sync.Reason.DEVICE_UNAVAILABLE
    assert rt.syncer.unresolved() == []


def test_passes_meeting_an_unknown_device_list_the_devices_at_most_once_per_interval(
    rt: runtime.Runtime, cluster: fakes.FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deleted device queues all its HSMSecrets at once: one listing answers for the passes that follow."""
    monkeypatch.setattr(syncer, "DEVICE_LOOKUP_SECONDS", 3600.0)
    cluster.add(hsmsecret(device="late"))
    assert rt.syncer.run(KEY) == "invalid"
    cluster.add(hsmdevice("late"))
    assert rt.syncer.run(KEY) == "invalid"
    monkeypatch.setattr(syncer, "DEVICE_LOOKUP_SECONDS", 0.0)
    assert rt.syncer.run(KEY) == "error"
    assert reason(cluster) == sync.Reason.DEVICE_UNAVAILABLE


def test_a_device_being_deleted_is_not_taken_from_the_api_server(
    rt: runtime.Runtime, cluster: fakes.FakeKube
) -> None:
    going = hsmdevice("going")
    going["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    cluster.add(going)
    cluster.add(hsmsecret(device="going"))
    assert rt.syncer.run(KEY) == "invalid"
    assert reason(cluster) == sync.Reason.INVALID
    assert rt.syncer.unresolved() == [KEY]


def test_the_secret_as_written_is_intact_and_an_edit_is_not(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    written = cluster.stored("Secret", APP_NS, "db")
    assert written is not None
    assert rt.syncer.intact(KEY, written)
    edited = {**written, "data": {"k": base64.b64encode(b"edited").decode()}}
    assert not rt.syncer.intact(KEY, edited)


def test_a_deleted_hsmsecret_is_forgotten(rt: runtime.Runtime, cluster: fakes.FakeKube) -> None:
    cluster.add(hsmsecret())
    rt.syncer.run(KEY)
    cluster.delete(constants.KIND_SECRET, APP_NS, "db")
    assert rt.syncer.run(KEY) == "gone"
    assert rt.syncer.paths.tracked() == []


def test_the_status_gauge_counts_each_hsmsecret_once(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    def in_sync() -> float:
        return (
            prometheus_client.REGISTRY.get_sample_value("hsm_manager_hsmsecrets", {"status": "InSync"}) or 0
        )

    before = in_sync()
    cluster.add(hsmsecret())
    agent(directory, "hsm-a").write(PATH, {"k": b"v"}, None)
    rt.syncer.run(KEY)
    rt.syncer.run(KEY)
    assert in_sync() == before + 1
    rt.syncer.forget(KEY)
    assert in_sync() == before


def test_a_secret_the_go_operator_wrote_for_this_hsmsecret_is_taken_over(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    owner = cluster.add(hsmsecret())["metadata"]
    go_ref = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_SECRET,
        "name": "db",
        "uid": owner["uid"],
    }
    cluster.add(
        {
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": APP_NS,
                "labels": {"managed-by": "hsm-secrets-operator", "hsm-path": "db"},
                "ownerReferences": [{**go_ref, "controller": True, "blockOwnerDeletion": True}],
            },
            "data": {"k": base64.b64encode(b"from the go operator").decode()},
        }
    )
    agent(directory, "hsm-a").write(PATH, {"k": b"imported"}, None)
    assert rt.syncer.run(KEY) == "written"
    assert secret_data(cluster) == {"k": b"imported"}
    assert reason(cluster) == sync.Reason.SYNCED


def test_a_go_operator_secret_of_another_hsmsecret_is_not_taken_over(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    other = {"apiVersion": constants.API_VERSION, "kind": constants.KIND_SECRET, "name": "db", "uid": "gone"}
    cluster.add(
        {
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": APP_NS,
                "labels": {"managed-by": "hsm-secrets-operator"},
                "ownerReferences": [{**other, "controller": True}],
            },
            "data": {"k": base64.b64encode(b"theirs").decode()},
        }
    )
    agent(directory, "hsm-a").write(PATH, {"k": b"ours"}, None)
    rt.syncer.run(KEY)
    assert secret_data(cluster) == {"k": b"theirs"}
    assert reason(cluster) == sync.Reason.CONFLICT
