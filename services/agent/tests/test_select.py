"""Which head wins and which objects are leftovers (pure)."""

from __future__ import annotations

import datetime

from hsm_agent.store import layout, select

NOW = datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)
WEEK = 7 * 86400.0


def head(
    version: int, generation: str = "", deleted: bool = False, time: str = "2024-05-31T00:00:00Z"
) -> layout.Head:
    generation = generation or f"{version:016x}"
    keys = () if deleted else ("k",)
    return layout.Head("ns/a", version, generation, keys, "", deleted, layout.Metadata(), "w", time)


def always(_: layout.Head) -> bool:
    return True


def test_highest_complete_head_wins_and_the_others_are_collected() -> None:
    found = [select.Found("old", head(1)), select.Found("new", head(2))]
    decision = select.decide(found, always, NOW, WEEK)
    assert (decision.winner_ref, decision.collect) == ("new", ("old",))


def test_incomplete_newer_head_loses_to_a_complete_older_one() -> None:
    found = [select.Found("old", head(1)), select.Found("broken", head(2))]
    decision = select.decide(found, lambda h: h.version == 1, NOW, WEEK)
    assert (decision.winner_ref, decision.collect) == ("old", ("broken",))


def test_nothing_is_collected_when_no_head_is_complete() -> None:
    found = [select.Found("a", head(1)), select.Found("b", head(2))]
    decision = select.decide(found, lambda _: False, NOW, WEEK)
    assert (decision.winner, decision.collect, len(decision.kept)) == (None, (), 2)


def test_completeness_is_not_asked_below_the_winner() -> None:
    asked: list[int] = []
    select.decide(
        [select.Found(v, head(v)) for v in (1, 2, 3)],
        lambda h: asked.append(h.version) or True,
        NOW,
        WEEK,
    )
    assert asked == [3]


def test_equal_versions_are_decided_by_time_then_writer() -> None:
    early = select.Found("early", head(2, "aa", time="2024-05-30T00:00:00Z"))
    late = select.Found("late", head(2, "bb", time="2024-05-31T00:00:00Z"))
    assert select.decide([late, early], always, NOW, WEEK).winner_ref == "late"


def test_undecodable_heads_are_collected_next_to_a_winner() -> None:
    found = [select.Found("junk", None), select.Found("good", head(1))]
    assert select.decide(found, always, NOW, WEEK).collect == ("junk",)


def test_path_with_a_foreign_head_is_left_alone() -> None:
    found = [select.Found("future", None, foreign=True), select.Found("good", head(1))]
    decision = select.decide(found, always, NOW, WEEK)
    assert (decision.winner, decision.collect) == (None, ())


def test_tombstone_is_kept_within_retention() -> None:
    decision = select.decide([select.Found("t", head(2, deleted=True))], always, NOW, WEEK)
    assert decision.winner is not None
    assert decision.winner.deleted


def test_expired_tombstone_takes_the_records_it_deleted_with_it() -> None:
    old = head(2, deleted=True, time="2024-01-01T00:00:00Z")
    decision = select.decide([select.Found(None, old), select.Found("r", head(1))], always, NOW, WEEK)
    assert (decision.winner, decision.collect, decision.kept) == (None, ("r",), ())


def test_tombstone_of_the_ledger_outranks_an_older_record() -> None:
    tomb = head(3, deleted=True)
    decision = select.decide([select.Found("r", head(2)), select.Found(None, tomb)], always, NOW, WEEK)
    assert (decision.winner, decision.winner_ref, decision.collect) == (tomb, None, ("r",))


def test_newer_record_outranks_a_tombstone_which_is_never_collected_as_an_object() -> None:
    decision = select.decide(
        [select.Found(None, head(3, deleted=True)), select.Found("r", head(4))], always, NOW, WEEK
    )
    assert (decision.winner_ref, decision.collect) == ("r", ())


def test_chunks_of_no_kept_record_are_orphans() -> None:
    chunks = {"ns/a@2#0": ["c2"], "ns/a@1#0": ["c1"], "ns/a@2#1": ["c3"], "ns/a@2#2": ["x", "y"]}
    assert select.chunk_orphans(chunks, [("ns/a@2", 2)]) == ["c1", "x", "y"]
