"""Which head of a path wins, and which objects are leftovers to collect. Pure: no PKCS#11 here."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from . import layout

Ref = TypeVar("Ref")


@dataclasses.dataclass(frozen=True)
class FoundHead(Generic[Ref]):
    """One head object found under a path's label: its handle and what it decoded to."""

    ref: Ref
    head: layout.Head | None
    """None when the object does not decode as a v1 head."""
    foreign: bool = False
    """Written in a format this agent does not know: never served, never collected."""


@dataclasses.dataclass(frozen=True)
class Decision(Generic[Ref]):
    """The outcome for one path: the head to serve (with its object) and the head objects to destroy."""

    winner: layout.Head | None
    winner_ref: Ref | None
    collect: tuple[Ref, ...]
    kept: tuple[layout.Head, ...]
    """Heads that stay on the token (their values must not be collected)."""


def tombstone_expired(head: layout.Head, now: datetime.datetime, retention: float) -> bool:
    """True when head is a tombstone older than retention seconds (undated tombstones never expire)."""
    if not head.deleted:
        return False
    written = layout.parse_time(head.time)
    return written is not None and (now - written).total_seconds() > retention


def decide(
    found: Sequence[FoundHead[Ref]],
    complete: Callable[[layout.Head], bool],
    now: datetime.datetime,
    retention: float,
) -> Decision[Ref]:
    """Pick the highest-ranked complete head; every other head object of the path is a leftover.

    complete(head) says whether all of head's values are present and its checksum verifies; it is
    asked from the strongest head down and not beyond the first that passes. When no head is
    complete nothing is destroyed (the data may come back); a path with a foreign head is left alone.
    """
    if any(item.foreign for item in found):
        return Decision(None, None, (), tuple(item.head for item in found if item.head is not None))
    decodable = [(item.ref, item.head) for item in found if item.head is not None]
    decodable.sort(key=lambda pair: pair[1].rank(), reverse=True)
    undecodable = tuple(item.ref for item in found if item.head is None)
    chosen = next((i for i, (_, head) in enumerate(decodable) if complete(head)), None)
    if chosen is None:
        return Decision(None, None, undecodable, tuple(head for _, head in decodable))
    winner_ref, winner_head = decodable[chosen]
    others = tuple(ref for i, (ref, _) in enumerate(decodable) if i != chosen)
    if tombstone_expired(winner_head, now, retention):
        return Decision(None, None, (*others, winner_ref, *undecodable), ())
    return Decision(winner_head, winner_ref, (*others, *undecodable), (winner_head,))


def orphans(values: Mapping[str, Sequence[Ref]], kept: Iterable[layout.Head]) -> list[Ref]:
    """Value objects that no kept head refers to: leftovers of interrupted or superseded writes."""
    referenced = {label for head in kept for label in head.value_labels()}
    return [ref for label, refs in values.items() if label not in referenced for ref in refs]
