"""The one conflict order of copies of a path, and the version rules every writer follows. Pure.

Devices of an HSMDevice can disagree (one was offline, a write reached only some). Every reader — the API,
the operator's sync and the mirror repair — picks the same copy: the highest version, then the latest
write time, then the writer's name, then the checksum. The order depends on the copies alone, never on
which device holds them, so equal copies on two devices are interchangeable.

A version names one value: writes stamp version = highest on any device + 1, and reach the devices in
one order (``write_order``) with a compare-and-set on each, so of two racing writers of the same version
only the first to pass the first device goes on (see mirroring.service).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping

from . import model


def rank(state: model.PathState) -> tuple[int, str, str, str]:
    """The conflict order of one copy: higher ranks win."""
    return (state.version, state.updated_at, state.writer, state.checksum)


def newest(states: Mapping[str, model.PathState]) -> tuple[str, model.PathState] | None:
    """A device holding the newest copy of a path and that copy; None when no device has the path.

    Among devices holding equal copies the first by name is taken, so every caller reads from the same one.
    """
    present = sorted((member, state) for member, state in states.items() if state.version > 0)
    if not present:
        return None
    return max(present, key=lambda item: rank(item[1]))


def current(states: Mapping[str, model.PathState]) -> model.PathState:
    """The newest copy of a path across devices (ABSENT when none has it)."""
    found = newest(states)
    return found[1] if found else model.ABSENT


def next_version(states: Iterable[model.PathState]) -> int:
    """The version a write stamps: the highest version on any device (tombstones count) + 1."""
    return max((state.version for state in states), default=0) + 1


def live_version(states: Mapping[str, model.PathState]) -> int:
    """The version callers see and name in If-Match: the newest copy's, 0 when absent or deleted."""
    state = current(states)
    return state.version if state.live else 0


def write_order(members: Iterable[str]) -> list[str]:
    """The order every writer reaches the devices in: the first device settles races (by name)."""
    return sorted(members)


class RepairKind(enum.StrEnum):
    COPY = "copy"
    """Write the winner's data and metadata."""
    TOMBSTONE = "tombstone"
    """Write a tombstone."""


@dataclasses.dataclass(frozen=True)
class RepairAction:
    """Bring target to the newest copy of path, read from source, at exactly version."""

    path: str
    target: str
    source: str
    kind: RepairKind
    version: int
    writer: str


def plan_repair(path: str, states: Mapping[str, model.PathState]) -> list[RepairAction]:
    """What to write so that every device holds the newest copy of path (empty when they agree).

    A device that lacks a deleted path needs nothing. When devices hold different copies at the winner's
    version (older data, written before versions named one value), versions cannot go back: every device
    gets the winner's copy at the next version, so all of them end up equal. Targets come in write_order.
    """
    found = newest(states)
    if found is None:
        return []
    source, winner = found
    kind = RepairKind.TOMBSTONE if winner.deleted else RepairKind.COPY
    tie = any(
        state.version >= winner.version and not state.same_as(winner)
        for member, state in states.items()
        if member != source
    )
    if tie:
        version = next_version(states.values())
        targets = write_order(states)
    else:
        version = winner.version
        targets = write_order(
            member
            for member, state in states.items()
            if not state.same_as(winner) and not (winner.deleted and state.version == 0)
        )
    return [RepairAction(path, target, source, kind, version, winner.writer) for target in targets]


def in_sync(states: Mapping[str, model.PathState]) -> bool:
    """True when no repair is needed."""
    return not plan_repair("", states)


def merge(current_data: Mapping[str, bytes], patch: Mapping[str, bytes | None]) -> dict[str, bytes]:
    """JSON-merge-patch of secret data: a value replaces or adds its key, null removes it."""
    merged = dict(current_data)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
