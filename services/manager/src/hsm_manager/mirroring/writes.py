"""Mirrored writes: every reachable device of the group gets the same version (highest + 1) and metadata.

The devices are written in the one write order, each with a compare-and-set against the copy this write
saw there. Until one device has taken the write, a lost compare-and-set aborts it: a racing writer got
there first with this version, so the write starts over from fresh copies (or, with If-Match, fails).
Once one device took it, the version is this write's alone: a later device that refuses it was written
by a racing writer since this write looked. If that device is still below this version, the write is
applied over it (it is newer); if it is at or above, a newer write overtook this one there, which is
not a failure. So a version number names one value on every device, and 207 means a device failed.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from hsm_common import times
from hsm_manager.decide import conflict, model
from hsm_manager.gateway import errors as agent_errors

from . import errors, gather, groups, reads


@dataclasses.dataclass(frozen=True)
class DeviceResult:
    """The outcome of one write on one device."""

    member: str
    ok: bool
    version: int = 0
    failure: errors.Failure | None = None
    message: str = ""

    def to_wire(self) -> dict[str, object]:
        out: dict[str, object] = {"device": self.member, "success": self.ok}
        if self.ok:
            out["version"] = self.version
        else:
            out["error"] = {"code": (self.failure or errors.Failure.INTERNAL).value, "message": self.message}
        return out


@dataclasses.dataclass(frozen=True)
class Written:
    """A mirrored write that reached at least one device."""

    path: str
    version: int
    results: tuple[DeviceResult, ...]

    @property
    def partial(self) -> bool:
        """True when some devices missed the write (the repair brings them along)."""
        return not all(result.ok for result in self.results)


#: Attempts of a write that lost a race while the caller asked for no particular version.
RACE_ATTEMPTS = 8
#: Upper bound of the random pause before attempt n, times 2**n (seconds): racers spread out.
RACE_BACKOFF = 0.01


def _retried(run: Callable[[], Written], expected: int | None) -> Written:
    """run, again from fresh copies when it lost a race and no version was asked for.

    With If-Match the caller wants exactly that version, so a conflict is their answer.
    """
    for attempt in range(RACE_ATTEMPTS):
        try:
            return run()
        except errors.VersionConflict:
            if expected is not None or attempt == RACE_ATTEMPTS - 1:
                raise
        time.sleep(random.uniform(0, RACE_BACKOFF * 2**attempt))
    raise AssertionError("unreachable")


def check_expected(path: str, current: int, expected: int | None) -> None:
    """Raise VersionConflict when expected is given and is not current (0 = must be absent)."""
    if expected is not None and expected != current:
        raise errors.VersionConflict(
            f"secret {path!r} is at version {current}, not {expected}",
            {"path": path, "expectedVersion": expected, "currentVersion": current},
        )


def create(
    group: groups.Group, path: str, data: Mapping[str, bytes], metadata: model.Metadata | None, writer: str
) -> Written:
    """Create path on every device; AlreadyExists when any device holds it live."""

    def run() -> Written:
        snapshot = _snapshot(group, path)
        if any(state.live for state in snapshot.states.values()):
            raise errors.AlreadyExists(f"secret {path!r} already exists", {"path": path})
        return _write(group, path, snapshot, data, _metadata(metadata, None), writer)

    return _retried(run, None)


def replace(
    group: groups.Group,
    path: str,
    data: Mapping[str, bytes],
    metadata: model.Metadata | None,
    writer: str,
    expected: int | None,
) -> Written:
    """Replace (or create) path on every device; VersionConflict when expected is stale."""

    def run() -> Written:
        # The current metadata comes with the states: its creation time is kept (or all of it, when the
        # request sets none).
        snapshot, previous = gather.path_states_and_metadata(group, path, copy=False)
        snapshot.require_any(group.device)
        check_expected(path, conflict.live_version(snapshot.states), expected)
        return _write(group, path, snapshot, data, _metadata(metadata, previous), writer)

    return _retried(run, expected)


def patch(
    group: groups.Group,
    path: str,
    changes: Mapping[str, bytes | None],
    metadata: model.Metadata | None,
    writer: str,
    expected: int | None,
    validate: Callable[[dict[str, bytes]], None],
) -> Written:
    """Merge changes into the newest copy of path (None removes a key) and mirror the result."""

    def run() -> Written:
        secret, _ = reads.read(group, path)
        check_expected(path, secret.version, expected)
        merged = conflict.merge(secret.data, changes)
        validate(merged)
        snapshot = _snapshot(group, path)
        check_expected(path, conflict.live_version(snapshot.states), secret.version)
        return _write(group, path, snapshot, merged, _metadata(metadata, secret.metadata), writer)

    return _retried(run, expected)


def delete_key(group: groups.Group, path: str, key: str, writer: str, expected: int | None) -> Written:
    """Remove one key (a new version without it); removing the last key deletes the secret."""

    def run() -> Written:
        secret, _ = reads.read(group, path)
        if key not in secret.data:
            raise errors.NotFound(f"secret {path!r} has no key {key!r}", {"path": path, "key": key})
        check_expected(path, secret.version, expected)
        remaining = {k: v for k, v in secret.data.items() if k != key}
        snapshot = _snapshot(group, path)
        check_expected(path, conflict.live_version(snapshot.states), secret.version)
        if not remaining:
            return _tombstone(group, path, snapshot, writer)
        return _write(group, path, snapshot, remaining, secret.metadata, writer)

    return _retried(run, expected)


def delete(group: groups.Group, path: str, writer: str, expected: int | None) -> Written:
    """Write a tombstone (highest version + 1) on every device that holds path, so it cannot come back."""

    def run() -> Written:
        snapshot = _snapshot(group, path)
        reads.require_live(path, snapshot.states)
        check_expected(path, conflict.live_version(snapshot.states), expected)
        return _tombstone(group, path, snapshot, writer)

    return _retried(run, expected)


def _write(
    group: groups.Group,
    path: str,
    snapshot: gather.Snapshot,
    data: Mapping[str, bytes],
    metadata: model.Metadata,
    writer: str,
) -> Written:
    version = conflict.next_version(snapshot.states.values())

    def apply(member: groups.Member, state: model.PathState) -> int | None:
        return member.client.write(
            path, data, metadata, expected=state.version, version=version, writer=writer
        )

    return Written(path, version, _in_write_order(group, path, snapshot, version, apply))


def _tombstone(group: groups.Group, path: str, snapshot: gather.Snapshot, writer: str) -> Written:
    version = conflict.next_version(snapshot.states.values())

    def apply(member: groups.Member, state: model.PathState) -> int | None:
        if state.version == 0:
            return None  # nothing to bring back there; the repair leaves such devices alone as well
        return member.client.delete(path, expected=state.version, version=version, writer=writer)

    return Written(path, version, _in_write_order(group, path, snapshot, version, apply))


def _in_write_order(
    group: groups.Group,
    path: str,
    snapshot: gather.Snapshot,
    written_version: int,
    apply: Callable[[groups.Member, model.PathState], int | None],
) -> tuple[DeviceResult, ...]:
    """apply on each device in the write order; see the module's docstring for what a conflict means."""
    results = [_failed(name, error) for name, error in snapshot.failed.items()]
    settled = False
    for name in conflict.write_order(snapshot.states):
        member = group.member(name)
        try:
            version = apply(member, snapshot.states[name])
        except agent_errors.Conflict as error:
            if not settled:
                raise errors.VersionConflict(
                    f"secret {path!r} was changed on {name} while this write was under way",
                    {"path": path, "device": name},
                ) from error
            results.append(_catch_up(member, path, written_version, apply, error))
        except agent_errors.AgentCallError as error:
            results.append(_failed(name, error))
        else:
            settled = settled or version is not None
            results.append(DeviceResult(name, True, version or 0))
    ordered = tuple(sorted(results, key=lambda result: result.member))
    _require_some(ordered)
    return ordered


#: Times a settled write re-reads a device that a racing writer moved below this write's version.
CATCH_UP_ATTEMPTS = RACE_ATTEMPTS


def _catch_up(
    member: groups.Member,
    path: str,
    version: int,
    apply: Callable[[groups.Member, model.PathState], int | None],
    error: agent_errors.AgentCallError,
) -> DeviceResult:
    """Apply a settled write to a device a racing writer changed since the snapshot (see module doc)."""
    for _ in range(CATCH_UP_ATTEMPTS):
        try:
            fresh = member.client.state(path, copy=False)
            if fresh.version >= version:
                return DeviceResult(member.name, True, version)  # overtaken by a newer write
            return DeviceResult(member.name, True, apply(member, fresh) or 0)
        except agent_errors.Conflict as again:
            error = again
        except agent_errors.AgentCallError as failed:
            return _failed(member.name, failed)
    return _failed(member.name, error)


def _failed(name: str, error: agent_errors.AgentCallError) -> DeviceResult:
    return DeviceResult(name, False, failure=errors.failure_of(error), message=error.message)


def _require_some(results: tuple[DeviceResult, ...]) -> None:
    """Raise the devices' common error when none took the write (a total failure is never a success)."""
    if any(result.ok for result in results):
        return
    if not results:
        raise errors.DeviceUnavailable("no device of the group is available")
    failures = {result.failure for result in results}
    failure = failures.pop() if len(failures) == 1 else errors.Failure.DEVICE_UNAVAILABLE
    message = "; ".join(f"{result.member}: {result.message}" for result in results)
    kind = errors.BY_FAILURE.get(failure or errors.Failure.INTERNAL, errors.DeviceUnavailable)
    raise kind(message, {"devices": [result.to_wire() for result in results]})


def _snapshot(group: groups.Group, path: str) -> gather.Snapshot:
    snapshot = gather.path_states(group, path, copy=False)
    snapshot.require_any(group.device)
    return snapshot


def _metadata(given: model.Metadata | None, previous: model.Metadata | None) -> model.Metadata:
    """The metadata to write: the given one (its creation time kept), else the previous one unchanged.

    The creation time is stamped here, once for every device, so the devices' copies agree.
    """
    created = previous.created_at if previous is not None and previous.created_at else times.now()
    if given is None:
        return previous if previous is not None else model.Metadata(created_at=created)
    return dataclasses.replace(given, created_at=created)


def wire(written: Written) -> dict[str, Any]:
    """The response data of a write."""
    return {
        "path": written.path,
        "version": written.version,
        "devices": [result.to_wire() for result in written.results],
    }
