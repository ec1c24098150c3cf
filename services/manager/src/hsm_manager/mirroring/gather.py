"""What each device of a group holds (index-served calls only: no value is read on the agents)."""

from __future__ import annotations

import dataclasses

from hsm_manager.decide import model
from hsm_manager.gateway import errors as agent_errors

from . import errors, groups


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The copies of one path on the reachable devices, and why the others could not be asked."""

    states: dict[str, model.PathState]
    failed: dict[str, agent_errors.AgentCallError]

    def require_any(self, device: str) -> None:
        """Raise DeviceUnavailable when no device answered."""
        if not self.states:
            raise unavailable(device, self.failed)


def path_states(group: groups.Group, path: str) -> Snapshot:
    """Every device's copy of path, tombstones included (ABSENT when it has none)."""
    states: dict[str, model.PathState] = {}
    failed: dict[str, agent_errors.AgentCallError] = {}
    for member in group.members:
        try:
            states[member.name] = member.client.state(path)
        except agent_errors.AgentCallError as error:
            failed[member.name] = error
    return Snapshot(states, failed)


@dataclasses.dataclass(frozen=True)
class Listing:
    """path → device → entry under a prefix, and the devices that could not be asked."""

    by_path: dict[str, dict[str, model.Entry]]
    failed: dict[str, agent_errors.AgentCallError]


def listing(group: groups.Group, prefix: str, include_deleted: bool) -> Listing:
    by_path: dict[str, dict[str, model.Entry]] = {}
    failed: dict[str, agent_errors.AgentCallError] = {}
    for member in group.members:
        try:
            found = member.client.entries(prefix, include_deleted)
        except agent_errors.AgentCallError as error:
            failed[member.name] = error
            continue
        for entry in found:
            by_path.setdefault(entry.path, {})[member.name] = entry
    return Listing(by_path, failed)


def unavailable(device: str, failed: dict[str, agent_errors.AgentCallError]) -> errors.MirrorError:
    if not failed:
        return errors.DeviceUnavailable(f"HSMDevice {device!r} has no available agent")
    detail = "; ".join(f"{name}: {error.message}" for name, error in sorted(failed.items()))
    return errors.DeviceUnavailable(
        f"no device of HSMDevice {device!r} answered: {detail}", {"devices": sorted(failed)}
    )
