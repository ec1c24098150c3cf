"""Reads over a device group: every one picks the newest copy in the one conflict order."""

from __future__ import annotations

import dataclasses

from hsm_manager.decide import conflict, model
from hsm_manager.gateway import errors as agent_errors

from . import errors, fanout, gather, groups


@dataclasses.dataclass(frozen=True)
class Listed:
    """The newest live entry of each path under a prefix in path order (one page of them when a limit was
    asked), and the devices that did not answer."""

    entries: dict[str, model.Entry]
    unavailable: tuple[str, ...]
    more: bool = False
    """Live paths follow the last of entries (only ever with a limit)."""


def list_live(group: groups.Group, prefix: str, after: str = "", limit: int = 0) -> Listed:
    """The live paths under prefix; with a limit, the first limit of those after after, at the cost of
    the page on every device rather than of everything under prefix."""
    # One more than the page tells whether more follow.
    asked = limit + 1 if limit else 0
    if len(group.members) == 1:
        # One device's live entries are the newest by definition: no tombstones to weigh, nothing to merge.
        member = group.members[0]
        try:
            live = member.client.entries(prefix, include_deleted=False, after=after, limit=asked)
        except agent_errors.AgentCallError as error:
            raise gather.unavailable(group.device, {member.name: error}) from None
        return _page({entry.path: entry for entry in live}, limit, ())
    newest: dict[str, model.Entry] = {}
    failed: dict[str, agent_errors.AgentCallError] = {}
    cursor = after
    while True:
        found = gather.listing(group, prefix, include_deleted=True, after=cursor, limit=asked, skip=failed)
        failed.update(found.failed)
        if len(failed) == len(group.members):
            raise gather.unavailable(group.device, failed)
        # A path past complete_to may be newer, or deleted, on a device whose page ended before it: it
        # is decided in a later round, which starts there.
        for path in sorted(found.by_path):
            if found.complete_to is not None and path > found.complete_to:
                break
            entry = _newest_entry(found.by_path[path])
            if entry.state.live:
                newest[path] = entry
        if found.complete_to is None or len(newest) > limit:
            return _page(newest, limit, tuple(sorted(failed)))
        cursor = found.complete_to


def _page(found: dict[str, model.Entry], limit: int, unavailable: tuple[str, ...]) -> Listed:
    paths = sorted(found)
    more = bool(limit) and len(paths) > limit
    if more:
        paths = paths[:limit]
    return Listed({path: found[path] for path in paths}, unavailable, more)


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
        quick = _read_first(group, path)
        if isinstance(quick, tuple):
            return quick
        member = group.member(newest_live(group, quick, path))
    try:
        return member.client.read(path), member.name
    except agent_errors.AgentCallError as error:
        raise errors.from_agent(error) from None


def _read_first(group: groups.Group, path: str) -> tuple[model.Secret, str] | gather.Snapshot:
    """The copy of the first device in write order when no device holds a newer one; else every state.

    After a complete write every device holds the newest copy, so reading the first device while asking
    the others for their state, all at once, usually answers in one round trip. A copy at the same version
    with the same checksum is the same copy (``PathState.same_as``, the repair's rule). Otherwise (the
    first device has no live copy or did not answer, another is newer, differs or did not answer) the
    caller picks by the full conflict order from the snapshot returned: the first device's state is asked
    for then, unless it did not answer at all (a dead agent is not waited for twice).
    """
    first = group.member(conflict.write_order(member.name for member in group.members)[0])

    def ask(member: groups.Member) -> model.Secret | model.PathState:
        return member.client.read(path) if member is first else member.client.state(path)

    answers = dict(zip((m.name for m in group.members), fanout.each(group.members, ask), strict=True))
    secret = answers.pop(first.name)
    if isinstance(secret, model.Secret) and all(
        isinstance(state, model.PathState) and _not_newer(state, secret) for state in answers.values()
    ):
        return secret, first.name
    states: dict[str, fanout.Answer[model.PathState]] = {}
    for name, answer in answers.items():
        assert not isinstance(answer, model.Secret)  # only the first device is read
        states[name] = answer
    if isinstance(secret, agent_errors.AgentCallError) and not isinstance(secret, agent_errors.NotFound):
        states[first.name] = secret
    else:
        states[first.name] = gather.state(first, path)
    return gather.Snapshot.of(states)


def _not_newer(state: model.PathState, secret: model.Secret) -> bool:
    if state.version != secret.version:
        return state.version < secret.version
    return not state.deleted and state.checksum == secret.checksum


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
