"""Mirroring decisions: version stamping, newest-wins repair with tombstones, partial results."""

from __future__ import annotations

import pytest

from hsm_manager.api import errors, mirror, states
from hsmproto.v1 import hsm_pb2

S = mirror.PathState


def test_next_version_is_one_above_the_highest_device_version() -> None:
    assert mirror.next_version([S(3, "a"), S(7, "b"), mirror.ABSENT]) == 8


def test_next_version_counts_tombstones() -> None:
    assert mirror.next_version([S(2, "a"), S(5, deleted=True)]) == 6


def test_next_version_starts_at_one_when_no_device_has_the_path() -> None:
    assert mirror.next_version([]) == 1


def test_newest_orders_by_version_then_timestamp_then_writer() -> None:
    states = {
        "a": S(4, "x", updated_at="2026-01-01T00:00:02Z", writer="alice"),
        "b": S(4, "y", updated_at="2026-01-01T00:00:02Z", writer="bob"),
        "c": S(4, "z", updated_at="2026-01-01T00:00:01Z", writer="zed"),
    }
    assert mirror.newest(states) == ("b", states["b"])


def test_repair_copies_the_newest_secret_to_a_device_that_missed_it() -> None:
    states = {"a": S(5, "new"), "b": S(4, "old"), "c": mirror.ABSENT}
    actions = mirror.plan_repair("ns/x", states)
    assert [(a.target, a.source, a.kind, a.version) for a in actions] == [
        ("b", "a", mirror.RepairKind.COPY, 5),
        ("c", "a", mirror.RepairKind.COPY, 5),
    ]


def test_repair_spreads_a_tombstone_over_an_older_live_copy() -> None:
    states = {"a": S(6, deleted=True), "b": S(5, "live")}
    (action,) = mirror.plan_repair("ns/x", states)
    assert (action.target, action.kind, action.version) == ("b", mirror.RepairKind.TOMBSTONE, 6)


def test_repair_never_resurrects_a_deleted_secret_from_an_offline_device() -> None:
    states = {"returning": S(3, "stale"), "kept": S(4, deleted=True)}
    actions = mirror.plan_repair("ns/x", states)
    assert all(a.kind is mirror.RepairKind.TOMBSTONE for a in actions)
    assert [a.target for a in actions] == ["returning"]


def test_repair_leaves_a_device_without_the_path_alone_when_it_was_deleted() -> None:
    assert mirror.plan_repair("ns/x", {"a": S(2, deleted=True), "b": mirror.ABSENT}) == []


def test_repair_does_nothing_when_devices_agree() -> None:
    assert mirror.plan_repair("ns/x", {"a": S(2, "c"), "b": S(2, "c")}) == []


def test_repair_of_a_version_tie_rewrites_every_device_above_both() -> None:
    states = {
        "a": S(4, "x", updated_at="2026-01-01T00:00:01Z"),
        "b": S(4, "y", updated_at="2026-01-01T00:00:02Z"),
    }
    actions = mirror.plan_repair("ns/x", states)
    assert {(a.target, a.source, a.version) for a in actions} == {("a", "b", 5), ("b", "b", 5)}


def test_create_conflicts_with_a_live_secret_on_any_device() -> None:
    with pytest.raises(errors.AlreadyExists):
        mirror.check_create("ns/x", {"a": mirror.ABSENT, "b": S(1, "c")})


def test_create_over_a_tombstone_is_allowed() -> None:
    mirror.check_create("ns/x", {"a": S(3, deleted=True)})


def test_expected_version_must_match_the_newest_version() -> None:
    with pytest.raises(errors.VersionConflict) as caught:
        mirror.check_expected_version("ns/x", {"a": S(3, "c"), "b": S(2, "c")}, 2)
    assert caught.value.details["currentVersion"] == 3


def test_expected_version_zero_means_absent() -> None:
    mirror.check_expected_version("ns/x", {"a": S(3, deleted=True)}, 0)


def test_all_devices_succeeding_gives_the_success_status() -> None:
    results = [mirror.DeviceResult("a", True, 2), mirror.DeviceResult("b", True, 2)]
    assert mirror.outcome(results, 201) == mirror.Outcome(201, written=True)


def test_some_devices_failing_gives_207() -> None:
    results = [
        mirror.DeviceResult("a", True, 2),
        mirror.DeviceResult("b", False, code=errors.Code.DEVICE_UNAVAILABLE, message="down"),
    ]
    assert mirror.outcome(results).status == 207


def test_every_device_failing_alike_raises_their_error() -> None:
    results = [
        mirror.DeviceResult("a", False, code=errors.Code.VERSION_CONFLICT, message="raced"),
        mirror.DeviceResult("b", False, code=errors.Code.VERSION_CONFLICT, message="raced"),
    ]
    with pytest.raises(errors.VersionConflict):
        mirror.outcome(results)


FULL = "no room: 119 of 120 objects used, 0 free"


def test_a_device_without_room_makes_the_write_partial_and_says_why() -> None:
    full = mirror.DeviceResult("b", False, code=errors.Code.DEVICE_FULL, message=FULL)
    assert mirror.outcome([mirror.DeviceResult("a", True, 2), full]).status == 207
    assert full.to_wire() == {
        "device": "b",
        "success": False,
        "error": {"code": "DEVICE_FULL", "message": FULL},
    }


def test_every_device_without_room_is_a_507_naming_each_device() -> None:
    results = [
        mirror.DeviceResult("a", False, code=errors.Code.DEVICE_FULL, message=FULL),
        mirror.DeviceResult("b", False, code=errors.Code.DEVICE_FULL, message=FULL),
    ]
    with pytest.raises(errors.DeviceFull) as caught:
        mirror.outcome(results)
    assert caught.value.status == 507
    assert caught.value.message == f"a: {FULL}; b: {FULL}"


def test_no_device_at_all_is_unavailable() -> None:
    with pytest.raises(errors.DeviceUnavailable):
        mirror.outcome([])


def test_merge_adds_replaces_and_removes_keys() -> None:
    merged = mirror.merge({"a": b"1", "b": b"2"}, {"b": b"3", "c": b"4", "a": None})
    assert merged == {"b": b"3", "c": b"4"}


def test_newest_entry_of_a_listing_follows_the_conflict_order() -> None:
    def entry(version: int, updated_at: str, writer: str, deleted: bool = False) -> hsm_pb2.SecretEntry:
        return hsm_pb2.SecretEntry(
            path="ns/x", version=version, updated_at=updated_at, writer=writer, deleted=deleted
        )

    newer_tombstone = entry(5, "2026-01-01T00:00:01Z", "alice", deleted=True)
    assert states.newest_entry({"a": entry(4, "2026-01-01T00:00:09Z", "zed"), "b": newer_tombstone}) is (
        newer_tombstone
    )
    later = entry(5, "2026-01-01T00:00:02Z", "alice")
    assert states.newest_entry({"a": newer_tombstone, "b": later}) is later
    only = entry(1, "", "")
    assert states.newest_entry({"a": only}) is only
