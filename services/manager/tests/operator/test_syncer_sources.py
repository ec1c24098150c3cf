"""Sync passes of HSMSecrets with spec.dataFrom, against in-memory agents and API server."""

from __future__ import annotations

from typing import Any

from hsm_manager.decide import model, sync
from hsm_manager.operator import runtime, triggers

from .. import fakes
from . import stored
from .conftest import APP_NS, hsmsecret

KEY = (APP_NS, "db")
CREDENTIALS = f"{APP_NS}/credentials"
ENDPOINT = f"{APP_NS}/endpoint"
URL = "postgres://{{ values.username }}:{{ values.password }}@{{ values.host }}/app"


def merged(**spec: Any) -> dict[str, Any]:
    return hsmsecret(dataFrom=[{"hsmPath": "credentials"}, {"hsmPath": "endpoint"}], **spec)


def write(directory: fakes.FakeDirectory, path: str, values: dict[str, bytes]) -> int:
    return directory.clients["hsm-a"].write(path, values, None)


def test_the_sources_keys_are_merged_with_the_later_path_winning(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    write(directory, CREDENTIALS, {"username": b"alice", "password": b"pw", "host": b"old"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"username": b"alice", "password": b"pw", "host": b"db.internal"}
    assert stored.status(cluster)["syncStatus"] == "InSync"
    assert stored.status(cluster)["keyConflicts"] == [{"key": "host", "source": ENDPOINT}]
    assert stored.status(cluster)["sources"] == [
        {"path": CREDENTIALS, "version": 1},
        {"path": ENDPOINT, "version": 1},
    ]


def test_a_template_renders_over_the_merged_keys(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged(target={"template": {"data": {"DATABASE_URL": URL}}}))
    write(directory, CREDENTIALS, {"username": b"alice", "password": b"pw"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    assert stored.data(cluster) == {"DATABASE_URL": b"postgres://alice:pw@db.internal/app"}
    assert "keyConflicts" not in stored.status(cluster)


def test_hsm_path_comes_first_and_data_selects_among_the_merged_keys(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(
        hsmsecret(
            hsmPath="credentials",
            dataFrom=[{"hsmPath": "endpoint"}],
            data=[{"secretKey": "HOST", "key": "host"}, {"secretKey": "USER", "key": "username"}],
        )
    )
    write(directory, CREDENTIALS, {"username": b"alice", "password": b"pw"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    assert stored.data(cluster) == {"HOST": b"db.internal", "USER": b"alice"}


def test_sources_in_sync_cost_no_read_and_no_write(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    write(directory, CREDENTIALS, {"username": b"alice"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    before, reads = list(cluster.calls), directory.clients["hsm-a"].calls.count("read")
    assert rt.syncer.run(KEY, verify=True) == "unchanged"
    assert cluster.calls == before
    assert directory.clients["hsm-a"].calls.count("read") == reads


def test_a_new_version_of_the_second_source_is_written(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    write(directory, CREDENTIALS, {"username": b"alice"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    version = write(directory, ENDPOINT, {"host": b"db2.internal"})
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster)["host"] == b"db2.internal"
    assert stored.status(cluster)["sources"][1] == {"path": ENDPOINT, "version": version}


def test_a_missing_source_is_an_error_naming_it_and_keeps_the_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    write(directory, CREDENTIALS, {"username": b"alice"})
    write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    kept = stored.secret(cluster)
    cluster.add(hsmsecret(dataFrom=[{"hsmPath": "credentials"}, {"hsmPath": "nowhere"}]))
    assert rt.syncer.run(KEY) == "error"
    assert stored.secret(cluster) == kept
    assert stored.status(cluster)["syncStatus"] == "Error"
    assert f"source path {APP_NS}/nowhere does not exist" in stored.status(cluster)["lastError"]
    reasons = [c["reason"] for c in stored.status(cluster)["conditions"] if c["type"] == "Ready"]
    assert reasons == [sync.Reason.NOT_FOUND]


class Queued:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def put(self, key: tuple[str, str]) -> None:
        self.keys.append(key)


def test_an_agent_event_on_any_source_path_queues_a_pass(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    write(directory, CREDENTIALS, {"username": b"alice"})
    version = write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    queued = Queued()
    agents = triggers.AgentTriggers(rt.syncer, queued)  # type: ignore[arg-type]
    endpoint = directory.endpoints("hsm-system", "hsm")[0]
    agents.on_event(endpoint, model.Event(model.EventKind.CHANGED, path=ENDPOINT, version=version + 1))
    agents.on_event(endpoint, model.Event(model.EventKind.CHANGED, path=CREDENTIALS, version=2))
    agents.on_event(endpoint, model.Event(model.EventKind.CHANGED, path=f"{APP_NS}/other", version=1))
    assert queued.keys == [KEY, KEY]


def test_a_reconnect_replaying_the_sources_heads_queues_nothing(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(merged())
    first = write(directory, CREDENTIALS, {"username": b"alice"})
    second = write(directory, ENDPOINT, {"host": b"db.internal"})
    rt.syncer.run(KEY)
    queued = Queued()
    agents = triggers.AgentTriggers(rt.syncer, queued)  # type: ignore[arg-type]
    endpoint = directory.endpoints("hsm-system", "hsm")[0]
    agents.on_event(endpoint, model.Event(model.EventKind.SNAPSHOT, path=CREDENTIALS, version=first))
    agents.on_event(endpoint, model.Event(model.EventKind.SNAPSHOT, path=ENDPOINT, version=second))
    assert queued.keys == []
