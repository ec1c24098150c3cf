"""Mirror repair: make every reachable device of a group hold the newest copy of every path.

Each repair write is a compare-and-set against the copy it planned from, so a concurrent write is never
undone; targets are written in the one write order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from hsm_manager.decide import conflict, model
from hsm_manager.gateway import errors as agent_errors

from . import gather, groups

log = logging.getLogger(__name__)

Observer = Callable[[str, bool], None]
"""Told of every repair write: (kind, succeeded)."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What one repair pass found and did."""

    device: str
    paths_checked: int
    repaired: tuple[tuple[str, str, str], ...]
    """(path, device, kind) of every successful repair."""
    failed: tuple[tuple[str, str, str], ...]
    """(path, device, message) of every failed repair."""
    unavailable: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "pathsChecked": self.paths_checked,
            "repaired": [{"path": p, "device": d, "kind": k} for p, d, k in self.repaired],
            "failed": [{"path": p, "device": d, "message": m} for p, d, m in self.failed],
            "unavailableDevices": list(self.unavailable),
        }


def repair_group(group: groups.Group, prefix: str = "", observe: Observer | None = None) -> Report:
    """Plan and apply the repairs of every path under prefix across the group's reachable devices."""
    found = gather.listing(group, prefix, include_deleted=True)
    reachable = [member.name for member in group.members if member.name not in found.failed]
    repaired: list[tuple[str, str, str]] = []
    failures: list[tuple[str, str, str]] = []
    for path in sorted(found.by_path):
        entries = found.by_path[path]
        states = {name: entries[name].state if name in entries else model.ABSENT for name in reachable}
        for action in conflict.plan_repair(path, states):
            try:
                _apply(group, states, action)
            except agent_errors.AgentCallError as error:
                failures.append((path, action.target, error.message))
                log.warning(
                    "mirror_repair_failed",
                    extra={
                        "path": path,
                        "device": action.target,
                        "kind": action.kind.value,
                        "error": error.message,
                    },
                )
                ok = False
            else:
                repaired.append((path, action.target, action.kind.value))
                log.info(
                    "mirror_repaired",
                    extra={
                        "path": path,
                        "device": action.target,
                        "kind": action.kind.value,
                        "version": action.version,
                    },
                )
                ok = True
            if observe is not None:
                observe(action.kind.value, ok)
    return Report(
        group.device, len(found.by_path), tuple(repaired), tuple(failures), tuple(sorted(found.failed))
    )


def _apply(group: groups.Group, states: dict[str, model.PathState], action: conflict.RepairAction) -> None:
    target = group.member(action.target).client
    expected = states[action.target].version
    if action.kind is conflict.RepairKind.TOMBSTONE:
        target.delete(action.path, expected=expected, version=action.version, writer=action.writer)
        return
    source = group.member(action.source).client.read(action.path)
    if source.version != states[action.source].version:
        # The source moved on since the plan; the next pass plans again from fresh copies.
        return
    target.write(
        action.path,
        source.data,
        source.metadata,
        expected=expected,
        version=action.version,
        writer=action.writer,
    )
