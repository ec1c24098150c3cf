"""The fake agent keeps the real agent's version rules, so tests built on it mean what they say."""

from __future__ import annotations

import pytest

from hsm_common import checksum
from hsm_manager.decide import model
from hsm_manager.gateway import errors

from . import fakes


def test_a_write_bumps_the_version_and_records_checksum_and_writer() -> None:
    agent = fakes.FakeAgentClient("a1")
    assert agent.write("ns/s", {"k": b"v"}, None) == 1
    assert agent.write("ns/s", {"k": b"w"}, None, writer="api") == 2
    state = agent.state("ns/s")
    assert (state.version, state.checksum, state.writer) == (2, checksum.checksum({"k": b"w"}), "api")


def test_a_write_expecting_another_version_is_a_conflict() -> None:
    agent = fakes.FakeAgentClient("a1")
    agent.write("ns/s", {"k": b"v"}, None)
    with pytest.raises(errors.Conflict):
        agent.write("ns/s", {"k": b"w"}, None, expected=0)


def test_an_explicit_version_must_exceed_the_current_one() -> None:
    agent = fakes.FakeAgentClient("a1")
    agent.write("ns/s", {"k": b"v"}, None, version=5)
    with pytest.raises(errors.Conflict):
        agent.write("ns/s", {"k": b"w"}, None, version=5)


def test_deleting_an_absent_path_is_not_found_unless_a_version_is_given() -> None:
    agent = fakes.FakeAgentClient("a1")
    with pytest.raises(errors.NotFound):
        agent.delete("ns/s")
    assert agent.delete("ns/s", version=3) == 3
    assert agent.state("ns/s").deleted


def test_created_at_is_kept_across_updates() -> None:
    agent = fakes.FakeAgentClient("a1")
    agent.write("ns/s", {"k": b"v"}, model.Metadata(description="d"))
    created = agent.read("ns/s").metadata.created_at
    agent.write("ns/s", {"k": b"w"}, model.Metadata(description="e"))
    assert agent.read("ns/s").metadata.created_at == created != ""


def test_a_watch_starts_with_the_snapshot_and_then_sees_writes() -> None:
    agent = fakes.FakeAgentClient("a1")
    agent.write("ns/s", {"k": b"v"}, None)
    stream = iter(agent.watch())
    assert [next(stream).kind, next(stream).kind] == [model.EventKind.SNAPSHOT, model.EventKind.SNAPSHOT_END]
    agent.delete("ns/s")
    assert next(stream) == model.Event(model.EventKind.DELETED, "ns/s", 2, "", True)
