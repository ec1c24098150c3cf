"""The one conflict order and the version rules (pure)."""

from __future__ import annotations

from hsm_manager.decide import conflict, model

S = model.PathState


def test_next_version_is_one_above_the_highest_device_version_tombstones_included() -> None:
    assert conflict.next_version([S(3, "a"), S(7, "b"), model.ABSENT]) == 8
    assert conflict.next_version([S(2, "a"), S(5, deleted=True)]) == 6
    assert conflict.next_version([]) == 1


def test_newest_orders_by_version_then_time_then_writer_never_by_device() -> None:
    states = {
        "a": S(4, "x", updated_at="2026-01-01T00:00:02Z", writer="alice"),
        "b": S(4, "y", updated_at="2026-01-01T00:00:02Z", writer="bob"),
        "c": S(4, "z", updated_at="2026-01-01T00:00:01Z", writer="zed"),
    }
    assert conflict.newest(states) == ("b", states["b"])
    renamed = {"z": states["a"], "y": states["b"], "x": states["c"]}
    assert conflict.newest(renamed) == ("y", states["b"])


def test_equal_copies_are_read_from_the_first_device_by_name() -> None:
    same = S(2, "c", updated_at="t", writer="w")
    assert conflict.newest({"b": same, "a": same}) == ("a", same)


def test_live_version_is_zero_for_absent_or_deleted() -> None:
    assert conflict.live_version({"a": S(3, deleted=True)}) == 0
    assert conflict.live_version({"a": S(3, "c"), "b": S(2, "c")}) == 3
    assert conflict.live_version({}) == 0


def test_repair_copies_the_newest_secret_to_devices_that_missed_it_in_write_order() -> None:
    actions = conflict.plan_repair("ns/x", {"c": model.ABSENT, "a": S(5, "new"), "b": S(4, "old")})
    assert [(a.target, a.source, a.kind, a.version) for a in actions] == [
        ("b", "a", conflict.RepairKind.COPY, 5),
        ("c", "a", conflict.RepairKind.COPY, 5),
    ]


def test_repair_never_resurrects_a_deleted_secret() -> None:
    actions = conflict.plan_repair("ns/x", {"returning": S(3, "stale"), "kept": S(4, deleted=True)})
    assert [(a.target, a.kind, a.version) for a in actions] == [
        ("returning", conflict.RepairKind.TOMBSTONE, 4)
    ]
    assert conflict.plan_repair("ns/x", {"a": S(2, deleted=True), "b": model.ABSENT}) == []


def test_repair_does_nothing_when_devices_agree() -> None:
    assert conflict.in_sync({"a": S(2, "c"), "b": S(2, "c")})


def test_two_values_under_one_version_are_rewritten_above_both() -> None:
    states = {
        "a": S(4, "x", updated_at="2026-01-01T00:00:01Z"),
        "b": S(4, "y", updated_at="2026-01-01T00:00:02Z"),
    }
    actions = conflict.plan_repair("ns/x", states)
    assert [(a.target, a.source, a.version) for a in actions] == [("a", "b", 5), ("b", "b", 5)]


def test_merge_adds_replaces_and_removes_keys() -> None:
    merged = conflict.merge({"a": b"1", "b": b"2"}, {"b": b"3", "c": b"4", "a": None})
    assert merged == {"b": b"3", "c": b"4"}
