"""GrpcAgentClient against a real hsm-agent: every answer is a model value, every refusal one error kind.

The fake agent (tests/fakes.py) claims the same rules; these tests hold the real one to them.
"""

from __future__ import annotations

import pytest

from hsm_common import checksum
from hsm_manager.decide import model
from hsm_manager.gateway import client, errors


def test_a_write_returns_the_new_version_and_the_state_names_its_writer(
    agent_client: client.AgentClient,
) -> None:
    first = agent_client.write("ns/c-write", {"k": b"v1"}, None)
    second = agent_client.write("ns/c-write", {"k": b"v2"}, None, expected=first, writer="api")
    state = agent_client.state("ns/c-write")
    assert (second, state.version, state.checksum) == (first + 1, second, checksum.checksum({"k": b"v2"}))
    assert state.updated_at
    assert state.writer == "api"


def test_a_write_expecting_another_version_is_a_conflict(agent_client: client.AgentClient) -> None:
    agent_client.write("ns/c-cas", {"k": b"v1"}, None)
    with pytest.raises(errors.Conflict):
        agent_client.write("ns/c-cas", {"k": b"v2"}, None, expected=0)


def test_an_explicit_version_must_exceed_the_current_one(agent_client: client.AgentClient) -> None:
    assert agent_client.write("ns/c-explicit", {"k": b"v1"}, None, version=7) == 7
    with pytest.raises(errors.Conflict):
        agent_client.write("ns/c-explicit", {"k": b"v2"}, None, version=7)


def test_reading_an_absent_path_is_not_found(agent_client: client.AgentClient) -> None:
    with pytest.raises(errors.NotFound):
        agent_client.read("ns/c-absent")
    assert agent_client.state("ns/c-absent") == model.ABSENT


def test_a_read_returns_data_checksum_and_metadata(agent_client: client.AgentClient) -> None:
    meta = model.Metadata(description="d", labels={"team": "a"})
    version = agent_client.write("ns/c-read", {"user": b"u", "pass": b"p"}, meta)
    secret = agent_client.read("ns/c-read")
    assert (secret.version, dict(secret.data)) == (version, {"user": b"u", "pass": b"p"})
    assert secret.checksum == checksum.checksum(secret.data)
    assert (secret.metadata.description, dict(secret.metadata.labels)) == ("d", {"team": "a"})


def test_the_agent_sets_created_at_once(agent_client: client.AgentClient) -> None:
    agent_client.write("ns/c-created", {"k": b"v1"}, model.Metadata(description="a"))
    entry, created = agent_client.metadata("ns/c-created")
    agent_client.write("ns/c-created", {"k": b"v2"}, model.Metadata(description="b"))
    _, updated = agent_client.metadata("ns/c-created")
    assert (entry.keys, updated.description) == (("k",), "b")
    assert updated.created_at == created.created_at != ""


def test_deleting_an_absent_path_is_not_found_unless_a_version_is_given(
    agent_client: client.AgentClient,
) -> None:
    with pytest.raises(errors.NotFound):
        agent_client.delete("ns/c-never")
    assert agent_client.delete("ns/c-never", version=4) == 4
    assert agent_client.state("ns/c-never").deleted


def test_tombstones_are_listed_only_when_asked(agent_client: client.AgentClient) -> None:
    agent_client.write("ns/c-list/live", {"k": b"v"}, None)
    agent_client.write("ns/c-list/gone", {"k": b"v"}, None)
    agent_client.delete("ns/c-list/gone")
    live = [e.path for e in agent_client.entries("ns/c-list/", include_deleted=False)]
    every = [e.path for e in agent_client.entries("ns/c-list/", include_deleted=True)]
    assert (live, sorted(every)) == (["ns/c-list/live"], ["ns/c-list/gone", "ns/c-list/live"])


def test_the_state_of_a_path_ignores_longer_paths_it_prefixes(agent_client: client.AgentClient) -> None:
    agent_client.write("ns/c-prefix-longer", {"k": b"v"}, None)
    assert agent_client.state("ns/c-prefix") == model.ABSENT


def test_info_and_health_describe_the_token(agent_client: client.AgentClient) -> None:
    info = agent_client.info()
    health = agent_client.health()
    assert info.label == "link"
    assert info.capacity is not None
    assert info.capacity.max_objects > info.capacity.used_objects > 0
    assert health.connected
