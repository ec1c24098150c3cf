"""What each device of a group holds (index-served calls only: no value is read on the agents)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from hsm_manager.decide import conflict, model
from hsm_manager.gateway import errors as agent_errors

from . import errors, fanout, groups


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The copies of one path on the reachable devices, and why the others could not be asked."""

    states: dict[str, model.PathState]
    failed: dict[str, agent_errors.AgentCallError]

    def require_any(self, device: str) -> None:
        """Raise DeviceUnavailable when no device answered."""
        if not self.states:
            raise unavailable(device, self.failed)

    @classmethod
    def of(cls, answers: Mapping[str, fanout.Answer[model.PathState]]) -> Snapshot:
        """The snapshot of each device's answer (a state, or why it could not be asked)."""
        states: dict[str, model.PathState] = {}
        failed: dict[str, agent_errors.AgentCallError] = {}
        for name, answer in answers.items():
            if isinstance(answer, agent_errors.AgentCallError):
                failed[name] = answer
            else:
                states[name] = answer
        return cls(states, failed)


def path_states(group: groups.Group, path: str, *, copy: bool = True) -> Snapshot:
    """Every device's copy of path, tombstones included (ABSENT when it has none), asked all at once
    (copy as in AgentClient.state)."""
    answers = fanout.each(group.members, lambda member: member.client.state(path, copy=copy))
    return Snapshot.of({member.name: answer for member, answer in zip(group.members, answers, strict=True)})


def state(member: groups.Member, path: str, *, copy: bool = True) -> fanout.Answer[model.PathState]:
    """One device's copy of path, or why it could not be asked."""
    try:
        return member.client.state(path, copy=copy)
    except agent_errors.AgentCallError as error:
        return error


def path_states_and_metadata(
    group: groups.Group, path: str, *, copy: bool = True
) -> tuple[Snapshot, model.Metadata | None]:
    """path_states, and the user metadata of the newest copy when it is live (None otherwise).

    The first device in write order is asked for its index entry and metadata in place of its state (the
    entry carries the whole state), the others for their state, all at once: after a complete write
    every device holds the newest copy (``PathState.same_as``), so this usually costs one call per
    device. A device without a live copy is then asked for its state (tombstones count), and metadata
    held only by another device costs one more call.
    """
    first = group.member(conflict.write_order(member.name for member in group.members)[0])

    def ask(member: groups.Member) -> model.PathState | tuple[model.Entry, model.Metadata]:
        return member.client.metadata(path) if member is first else member.client.state(path, copy=copy)

    answers = fanout.each(group.members, ask)
    metadata: model.Metadata | None = None
    states: dict[str, fanout.Answer[model.PathState]] = {}
    for member, answer in zip(group.members, answers, strict=True):
        if isinstance(answer, agent_errors.NotFound) and member is first:
            states[member.name] = state(
                member, path, copy=copy
            )  # absent, or a tombstone whose version counts
        elif isinstance(answer, tuple):
            entry, metadata = answer
            states[member.name] = entry.state
        else:
            states[member.name] = answer
    snapshot = Snapshot.of(states)
    newest = conflict.newest(snapshot.states)
    if newest is None or not newest[1].live:
        return snapshot, None
    # A copy at the newest version with the same checksum is the same write (the devices stamp their own
    # write times, so the conflict order may name another device): its metadata is the newest.
    if metadata is None or not snapshot.states[first.name].same_as(newest[1]):
        try:
            _, metadata = group.member(newest[0]).client.metadata(path)
        except agent_errors.AgentCallError as error:
            raise errors.from_agent(error) from None
    return snapshot, metadata


@dataclasses.dataclass(frozen=True)
class Listing:
    """path → device → entry under a prefix, and the devices that could not be asked."""

    by_path: dict[str, dict[str, model.Entry]]
    failed: dict[str, agent_errors.AgentCallError]
    complete_to: str | None = None
    """With a limit: the last path up to which every device that answered gave all its entries (a
    device that filled its page may hold more after its last one); None: every answer reached the end."""


def listing(
    group: groups.Group,
    prefix: str,
    include_deleted: bool,
    *,
    after: str = "",
    limit: int = 0,
    skip: Collection[str] = (),
) -> Listing:
    """What the members (but those named in skip) hold under prefix; with a limit, the first limit
    entries of each after after."""
    by_path: dict[str, dict[str, model.Entry]] = {}
    failed: dict[str, agent_errors.AgentCallError] = {}
    cut: list[str] = []
    for member in group.members:
        if member.name in skip:
            continue
        try:
            found = member.client.entries(prefix, include_deleted, after=after, limit=limit)
        except agent_errors.AgentCallError as error:
            failed[member.name] = error
            continue
        if limit and len(found) == limit:
            cut.append(found[-1].path)
        for entry in found:
            by_path.setdefault(entry.path, {})[member.name] = entry
    return Listing(by_path, failed, min(cut) if cut else None)


def unavailable(device: str, failed: dict[str, agent_errors.AgentCallError]) -> errors.MirrorError:
    if not failed:
        return errors.DeviceUnavailable(f"HSMDevice {device!r} has no available agent")
    detail = "; ".join(f"{name}: {error.message}" for name, error in sorted(failed.items()))
    return errors.DeviceUnavailable(
        f"no device of HSMDevice {device!r} answered: {detail}", {"devices": sorted(failed)}
    )
