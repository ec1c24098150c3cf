"""dataFrom's decisions: each source's newest copy, one state for all, and the merge of their keys."""

from __future__ import annotations

from hsm_common import models
from hsm_manager.decide import model, sources, sync


def seen(agent: str, version: int, digest: str = "c", deleted: bool = False) -> sync.Observation:
    return sync.Observation(agent, model.PathState(version=version, checksum=digest, deleted=deleted))


def test_each_source_is_read_from_the_agent_holding_its_newest_copy() -> None:
    picked = sources.pick(
        [("app/a", [seen("hsm-a", 2), seen("hsm-b", 3)]), ("app/b", [seen("hsm-a", 5), seen("hsm-b", 4)])]
    )
    assert isinstance(picked, list)
    assert [(p.path, p.agent, p.state.version) for p in picked] == [
        ("app/a", "hsm-b", 3),
        ("app/b", "hsm-a", 5),
    ]


def test_a_missing_source_is_an_error_naming_its_path() -> None:
    picked = sources.pick([("app/a", [seen("hsm-a", 1)]), ("app/gone", [seen("hsm-a", 0)])])
    assert isinstance(picked, sync.Decision)
    assert picked.sync_status == models.SyncStatus.ERROR
    assert picked.reason == sync.Reason.NOT_FOUND
    assert picked.action == sync.Action.NOTHING
    assert "app/gone" in picked.message


def test_a_source_deleted_on_the_hsm_is_an_error_naming_its_path() -> None:
    picked = sources.pick([("app/a", [seen("hsm-a", 4, deleted=True)])])
    assert isinstance(picked, sync.Decision)
    assert "source path app/a does not exist" in picked.message


def test_a_source_no_device_answered_for_is_device_unavailable() -> None:
    picked = sources.pick([("app/a", [sync.Observation("hsm-a", error="down")])])
    assert isinstance(picked, sync.Decision)
    assert picked.reason == sync.Reason.DEVICE_UNAVAILABLE


def test_a_new_version_of_any_source_changes_the_combined_checksum() -> None:
    one = sources.Picked("app/a", "hsm-a", model.PathState(version=1, checksum="x"))
    two = sources.Picked("app/b", "hsm-a", model.PathState(version=1, checksum="y"))
    moved = sources.Picked("app/b", "hsm-a", model.PathState(version=2, checksum="z"))
    before, after = sources.combined([one, two]), sources.combined([one, moved])
    assert before.checksum != after.checksum
    assert after.version > before.version


def test_later_sources_win_and_conflicts_name_the_winning_path_only() -> None:
    merged, conflicts = sources.merge(
        [("app/a", {"user": b"alice", "host": b"h1"}), ("app/b", {"host": b"h2", "port": b"5432"})]
    )
    assert merged == {"user": b"alice", "host": b"h2", "port": b"5432"}
    assert conflicts == [models.KeyConflict(key="host", source="app/b")]
    assert "h2" not in repr(conflicts)
