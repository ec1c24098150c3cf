"""The in-memory index and its watchers (pure)."""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st

from hsm_agent.store import index, layout


def head(path: str, version: int = 1, deleted: bool = False) -> layout.Head:
    return layout.Head(path, version, f"{version:x}", (), "", deleted, layout.Metadata(), "w", "t")


def drain(subscription: index.Subscription) -> list[tuple[str, str, int]]:
    events = []
    while not subscription.events.empty():
        event = subscription.events.get_nowait()
        assert event is not None
        events.append((event.kind.value, event.head.path, event.head.version))
    return events


def test_replace_all_reports_each_difference_once() -> None:
    idx = index.Index()
    idx.replace_all({"a/x": head("a/x"), "a/y": head("a/y")})
    subscription, _ = idx.subscribe("a/")
    changes = idx.replace_all({"a/x": head("a/x", 2), "a/z": head("a/z")})
    assert changes == 3
    assert sorted(drain(subscription)) == [
        ("changed", "a/x", 2),
        ("changed", "a/z", 1),
        ("deleted", "a/y", 1),
    ]


def test_unchanged_scan_reports_nothing() -> None:
    idx = index.Index()
    idx.replace_all({"a/x": head("a/x")})
    assert idx.replace_all({"a/x": head("a/x")}) == 0


def test_watchers_hear_only_their_prefix() -> None:
    idx = index.Index()
    subscription, _ = idx.subscribe("b/")
    idx.put(head("a/x"))
    idx.put(head("b/x", deleted=True))
    assert drain(subscription) == [("deleted", "b/x", 1)]


def test_subscription_snapshot_holds_the_current_entries() -> None:
    idx = index.Index()
    idx.put(head("a/x"))
    idx.put(head("b/x"))
    _, snapshot = idx.subscribe("a/")
    assert [item.path for item in snapshot] == ["a/x"]


def test_listing_leaves_out_tombstones_unless_asked() -> None:
    idx = index.Index()
    idx.put(head("a/x"))
    idx.put(head("a/y", deleted=True))
    assert [h.path for h in idx.entries("a/")] == ["a/x"]
    assert [h.path for h in idx.entries("a/", include_deleted=True)] == ["a/x", "a/y"]


def test_watcher_that_falls_behind_is_marked() -> None:
    idx = index.Index()
    subscription, _ = idx.subscribe("")
    for version in range(index.WATCH_QUEUE_SIZE + 1):
        idx.put(head("a/x", version + 1))
    assert subscription.overflowed


_PATHS = st.sampled_from(["a/x", "a/y", "a/x/z", "ab/x", "b", "b/a", "a", "ns/long-name"])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _PATHS, st.booleans()),
        st.tuples(st.just("drop"), _PATHS, st.booleans()),
        st.tuples(st.just("scan"), st.frozensets(_PATHS), st.booleans()),
    ),
    max_size=40,
)


@hypothesis.given(ops=_OPS, prefix=st.sampled_from(["", "a", "a/", "a/x", "b", "c", "ns/"]))
def test_prefix_listings_match_a_sorted_filter_after_any_changes(
    ops: list[tuple[str, object, bool]], prefix: str
) -> None:
    idx = index.Index()
    model: dict[str, layout.Head] = {}
    for step, (op, arg, deleted) in enumerate(ops, start=1):
        if op == "put":
            assert isinstance(arg, str)
            model[arg] = head(arg, step, deleted)
            idx.put(model[arg])
        elif op == "drop":
            assert isinstance(arg, str)
            model.pop(arg, None)
            idx.replace_path(arg, None)
        else:
            assert isinstance(arg, frozenset)
            model = {path: head(path, step, deleted) for path in arg}
            idx.replace_all(model)
    expected = [model[p] for p in sorted(model) if p.startswith(prefix)]
    assert idx.entries(prefix, include_deleted=True) == expected
    assert idx.entries(prefix) == [h for h in expected if not h.deleted]
    assert idx.subscribe(prefix)[1] == expected
