"""Which generation of a path wins, and which objects are leftovers to collect. Pure: no PKCS#11 here."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from . import layout

Ref = TypeVar("Ref")


@dataclasses.dataclass(frozen=True)
class Found(Generic[Ref]):
    """One generation of a path: a record (with its object) or a tombstone of the ledger (ref None)."""

    ref: Ref | None
    head: layout.Head | None
    """None when the record does not decode as a v2 record."""
    foreign: bool = False
    """Written in a format this agent does not know: never served, never collected."""


@dataclasses.dataclass(frozen=True)
class Decision(Generic[Ref]):
    """The outcome for one path: the generation to serve and the record objects to destroy."""

    winner: layout.Head | None
    winner_ref: Ref | None
    collect: tuple[Ref, ...]
    kept: tuple[layout.Head, ...]
    """Generations that stay on the token (their chunks must not be collected)."""


def _refs(items: Iterable[Ref | None]) -> tuple[Ref, ...]:
    return tuple(ref for ref in items if ref is not None)


def decide(
    found: Sequence[Found[Ref]],
    complete: Callable[[layout.Head], bool],
    now: datetime.datetime,
    retention: float,
) -> Decision[Ref]:
    """Pick the highest-ranked complete generation; every other record of the path is a leftover.

    complete(head) says whether head's chunks are all present and its checksum verifies (tombstones are
    complete); it is asked from the strongest head down and not beyond the first that passes. When no
    generation is complete nothing is destroyed (the data may come back); a path with a foreign record is
    left alone. An expired tombstone that wins takes the path's records with it.
    """
    if any(item.foreign for item in found):
        return Decision(None, None, (), tuple(item.head for item in found if item.head is not None))
    decodable = [(item.ref, item.head) for item in found if item.head is not None]
    decodable.sort(key=lambda pair: pair[1].rank(), reverse=True)
    undecodable = _refs(item.ref for item in found if item.head is None)
    chosen = next((i for i, (_, head) in enumerate(decodable) if complete(head)), None)
    if chosen is None:
        return Decision(None, None, undecodable, tuple(head for _, head in decodable))
    winner_ref, winner_head = decodable[chosen]
    others = _refs(ref for i, (ref, _) in enumerate(decodable) if i != chosen)
    if layout.tombstone_expired(winner_head, now, retention):
        return Decision(None, None, (*others, *undecodable), ())
    return Decision(winner_head, winner_ref, (*others, *undecodable), (winner_head,))


def chunk_orphans(chunks: Mapping[str, Sequence[Ref]], kept_objects: Iterable[tuple[str, int]]) -> list[Ref]:
    """Chunk objects that no kept record or ledger (its label and chunk count) refers to."""
    referenced = {label for owner, count in kept_objects for label in layout.chunk_labels(owner, count)}
    return [ref for label, refs in chunks.items() if label not in referenced for ref in refs]
