"""Pure decisions of mirroring: which version a write gets, which device wins, what a repair must do.

A write through the API goes to every available device of an HSMDevice with version = max over the
devices + 1. Devices that missed a write (offline, or failed) diverge; the repair makes every device
agree with the newest state, ordered by (version, timestamp, writer), tombstones included, so a device
that was offline never brings a deleted secret back.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence

from . import errors


@dataclasses.dataclass(frozen=True)
class PathState:
    """What one device holds for one path (its index entry); version 0 means absent."""

    version: int
    checksum: str = ""
    deleted: bool = False
    updated_at: str = ""
    writer: str = ""

    @property
    def live(self) -> bool:
        """True when the device holds readable data for the path."""
        return self.version > 0 and not self.deleted

    def order(self) -> tuple[int, str, str]:
        """The conflict order: higher version wins, then later timestamp, then writer name."""
        return (self.version, self.updated_at, self.writer)

    def same_as(self, other: PathState) -> bool:
        """True when both hold the same state (version, data and tombstone flag)."""
        return (self.version, self.checksum, self.deleted) == (other.version, other.checksum, other.deleted)


ABSENT = PathState(version=0)


def next_version(states: Iterable[PathState]) -> int:
    """The version a mirrored write stamps: the highest version on any device (tombstones count) + 1."""
    return max((state.version for state in states), default=0) + 1


def newest(states: Mapping[str, PathState]) -> tuple[str, PathState] | None:
    """The device holding the newest state of a path and that state; None when no device has it."""
    present = [(member, state) for member, state in states.items() if state.version > 0]
    if not present:
        return None
    return max(present, key=lambda item: (item[1].order(), item[0]))


def current(states: Mapping[str, PathState]) -> PathState:
    """The newest state of a path across devices (ABSENT when none has it)."""
    found = newest(states)
    return found[1] if found else ABSENT


def check_create(path: str, states: Mapping[str, PathState]) -> None:
    """Raise AlreadyExists when any device holds a live secret at path (a tombstone does not count)."""
    if current(states).live or any(state.live for state in states.values()):
        raise errors.AlreadyExists(f"secret {path!r} already exists", {"path": path})


def check_expected_version(path: str, states: Mapping[str, PathState], expected: int | None) -> None:
    """Raise VersionConflict when expected is given and is not the newest version (0 = must be absent)."""
    if expected is None:
        return
    state = current(states)
    actual = state.version if state.live else 0
    if expected != actual:
        raise errors.VersionConflict(
            f"secret {path!r} is at version {actual}, not {expected}",
            {"path": path, "expectedVersion": expected, "currentVersion": actual},
        )


def require_live(path: str, states: Mapping[str, PathState]) -> PathState:
    """The newest state, or NotFound when the path is absent or deleted on every device."""
    state = current(states)
    if not state.live:
        raise errors.NotFound(f"secret {path!r} not found", {"path": path})
    return state


class RepairKind(enum.StrEnum):
    COPY = "copy"
    """Write the winner's data and metadata."""
    TOMBSTONE = "tombstone"
    """Write a tombstone."""


@dataclasses.dataclass(frozen=True)
class RepairAction:
    """Bring target to the newest state of path, read from source, at exactly version."""

    path: str
    target: str
    source: str
    kind: RepairKind
    version: int
    writer: str


def plan_repair(path: str, states: Mapping[str, PathState]) -> list[RepairAction]:
    """What to write so that every device holds the newest state of path (empty when they agree).

    A device that lacks a deleted path needs nothing. When two devices hold different states at the
    winner's version (a tie after a race), versions cannot go back: every device gets the winner's
    state at the next version, so all of them end up equal.
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
        targets = sorted(states)
    else:
        version = winner.version
        targets = sorted(
            member
            for member, state in states.items()
            if not state.same_as(winner) and not (winner.deleted and state.version == 0)
        )
    return [RepairAction(path, target, source, kind, version, winner.writer) for target in targets]


@dataclasses.dataclass(frozen=True)
class DeviceResult:
    """The outcome of one operation on one device of the group."""

    member: str
    ok: bool
    version: int = 0
    code: errors.Code | None = None
    message: str = ""

    def to_wire(self) -> dict[str, object]:
        """The per-device entry of a response."""
        out: dict[str, object] = {"device": self.member, "success": self.ok}
        if self.ok:
            out["version"] = self.version
        else:
            out["error"] = {"code": (self.code or errors.Code.INTERNAL).value, "message": self.message}
        return out


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a mirrored write went overall: HTTP status and whether anything was written."""

    status: int
    written: bool


def outcome(results: Sequence[DeviceResult], success_status: int = 200) -> Outcome:
    """success_status when every device took the write, 207 when some did, else the devices' error.

    Raises the common ApiError when no device took it (the same code from every device, or
    DeviceUnavailable when they disagree), so a total failure is never reported as success.
    """
    if not results:
        raise errors.DeviceUnavailable("no device of the group is available")
    good = [result for result in results if result.ok]
    if len(good) == len(results):
        return Outcome(success_status, written=True)
    if good:
        return Outcome(errors.STATUS[errors.Code.PARTIAL_FAILURE], written=True)
    codes = {result.code for result in results}
    code = codes.pop() if len(codes) == 1 else errors.Code.DEVICE_UNAVAILABLE
    error_type = _ERROR_TYPES.get(code or errors.Code.INTERNAL, errors.DeviceUnavailable)
    message = "; ".join(f"{result.member}: {result.message}" for result in results)
    raise error_type(message, {"devices": [result.to_wire() for result in results]})


_ERROR_TYPES: dict[errors.Code, type[errors.ApiError]] = {
    errors.Code.NOT_FOUND: errors.NotFound,
    errors.Code.ALREADY_EXISTS: errors.AlreadyExists,
    errors.Code.VERSION_CONFLICT: errors.VersionConflict,
    errors.Code.INVALID_ARGUMENT: errors.InvalidArgument,
    errors.Code.DEVICE_FULL: errors.DeviceFull,
    errors.Code.PIN_REJECTED: errors.PinRejected,
    errors.Code.DEVICE_UNAVAILABLE: errors.DeviceUnavailable,
}


def merge(current_data: Mapping[str, bytes], patch: Mapping[str, bytes | None]) -> dict[str, bytes]:
    """JSON-merge-patch of secret data: a value replaces or adds its key, null removes it."""
    merged = dict(current_data)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
