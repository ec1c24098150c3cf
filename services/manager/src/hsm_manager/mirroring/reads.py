"""Reads over a device group: every one picks the newest copy in the one conflict order."""

from __future__ import annotations

import dataclasses

from hsm_manager.decide import conflict, model
from hsm_manager.gateway import errors as agent_errors

from . import errors, gather, groups


@dataclasses.dataclass(frozen=True)
class Listed:
    """The newest live entry of each path under a prefix, and the devices that did not answer."""

    entries: dict[str, model.Entry]
    unavailable: tuple[str, ...]


def list_live(group: groups.Group, prefix: str) -> Listed:
    found = gather.listing(group, prefix, include_deleted=True)
    if found.failed and len(found.failed) == len(group.members):
        raise gather.unavailable(group.device, found.failed)
    newest: dict[str, model.Entry] = {}
    for path, entries in found.by_path.items():
        entry = _newest_entry(entries)
        if entry.state.live:
            newest[path] = entry
    return Listed(newest, tuple(sorted(found.failed)))


def _newest_entry(entries: dict[str, model.Entry]) -> model.Entry:
    if len(entries) == 1:
        return next(iter(entries.values()))
    chosen = conflict.newest({member: entry.state for member, entry in entries.items()})
    assert chosen is not None  # index entries carry versions >= 1
    return entries[chosen[0]]


def read(group: groups.Group, path: str) -> tuple[model.Secret, str]:
    """The newest live copy of path and the device it was read from."""
    if len(group.members) == 1:
        # One device holds the newest copy by definition: skip the state round trip.
        member = group.members[0]
    else:
        member = group.member(newest_live(group, gather.path_states(group, path), path))
    try:
        return member.client.read(path), member.name
    except agent_errors.AgentCallError as error:
        raise errors.from_agent(error) from None


def metadata(
    group: groups.Group, path: str, snapshot: gather.Snapshot | None = None
) -> tuple[model.Entry, model.Metadata, str]:
    """Index entry and metadata of the newest live copy of path, and the device that holds it."""
    found = snapshot if snapshot is not None else gather.path_states(group, path)
    member = group.member(newest_live(group, found, path))
    try:
        entry, meta = member.client.metadata(path)
    except agent_errors.AgentCallError as error:
        raise errors.from_agent(error) from None
    return entry, meta, member.name


def checksum(group: groups.Group, path: str) -> model.PathState:
    """The newest live copy's state (version and checksum)."""
    snapshot = gather.path_states(group, path)
    snapshot.require_any(group.device)
    return require_live(path, snapshot.states)


@dataclasses.dataclass(frozen=True)
class Versions:
    """What every device holds for a path, and whether they agree."""

    snapshot: gather.Snapshot
    newest: model.PathState
    in_sync: bool


def versions(group: groups.Group, path: str) -> Versions:
    snapshot = gather.path_states(group, path)
    in_sync = not snapshot.failed and conflict.in_sync(snapshot.states)
    return Versions(snapshot, conflict.current(snapshot.states), in_sync)


def require_live(path: str, states: dict[str, model.PathState]) -> model.PathState:
    """The newest copy, or NotFound when the path is absent or deleted on every device."""
    state = conflict.current(states)
    if not state.live:
        raise errors.NotFound(f"secret {path!r} not found", {"path": path})
    return state


def newest_live(group: groups.Group, snapshot: gather.Snapshot, path: str) -> str:
    """The device holding the newest live copy of path."""
    snapshot.require_any(group.device)
    require_live(path, snapshot.states)
    found = conflict.newest(snapshot.states)
    assert found is not None  # require_live passed, so some device holds it
    return found[0]
