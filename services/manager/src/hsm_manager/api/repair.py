"""Mirror repair: make every reachable device of a group hold the newest state of every path.

Runs on POST /hsm/mirror/sync and periodically in one gunicorn worker (``loop``). Each repair write
is a compare-and-set against the state it planned from, so a concurrent API write is never undone.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import grpc

from hsmproto.v1 import hsm_pb2

from . import agents, metrics, mirror, states

log = logging.getLogger(__name__)


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
        """The response body of POST /hsm/mirror/sync."""
        return {
            "device": self.device,
            "pathsChecked": self.paths_checked,
            "repaired": [{"path": p, "device": d, "kind": k} for p, d, k in self.repaired],
            "failed": [{"path": p, "device": d, "message": m} for p, d, m in self.failed],
            "unavailableDevices": list(self.unavailable),
        }


def repair_group(provider: agents.Provider, group: agents.Group, prefix: str = "") -> Report:
    """Plan and apply the repairs of every path under prefix across the group's reachable devices."""
    by_path, failed = states.listing(provider, group, prefix, include_deleted=True)
    reachable = [member for member in group.members if member.name not in failed]
    members = {member.name: member for member in reachable}
    repaired: list[tuple[str, str, str]] = []
    errors: list[tuple[str, str, str]] = []
    for path in sorted(by_path):
        entries = by_path[path]
        path_states = {
            name: states.state_of(entries[name]) if name in entries else mirror.ABSENT for name in members
        }
        for action in mirror.plan_repair(path, path_states):
            try:
                _apply(provider, members, path_states, action)
            except grpc.RpcError as error:
                message = agents.message_of(error)
                errors.append((path, action.target, message))
                metrics.REPAIRS.labels(action.kind.value, "error").inc()
                log.warning(
                    "mirror_repair_failed",
                    extra={
                        "path": path,
                        "device": action.target,
                        "kind": action.kind.value,
                        "error": message,
                    },
                )
            else:
                repaired.append((path, action.target, action.kind.value))
                metrics.REPAIRS.labels(action.kind.value, "ok").inc()
                log.info(
                    "mirror_repaired",
                    extra={
                        "path": path,
                        "device": action.target,
                        "kind": action.kind.value,
                        "version": action.version,
                    },
                )
    return Report(group.device, len(by_path), tuple(repaired), tuple(errors), tuple(sorted(failed)))


def _apply(
    provider: agents.Provider,
    members: dict[str, agents.Member],
    path_states: dict[str, mirror.PathState],
    action: mirror.RepairAction,
) -> None:
    target = members[action.target]
    expected = path_states[action.target].version
    if action.kind is mirror.RepairKind.TOMBSTONE:
        request: object = hsm_pb2.DeleteSecretRequest(
            path=action.path,
            expected_version=expected,
            has_expected_version=True,
            version=action.version,
            writer=action.writer,
        )
        states.call(provider, target, "DeleteSecret", request)
        return
    source = states.call(
        provider, members[action.source], "ReadSecret", hsm_pb2.ReadSecretRequest(path=action.path)
    )
    if source.version != path_states[action.source].version:
        # The source moved on since the plan; the next pass plans again from fresh states.
        return
    request = hsm_pb2.WriteSecretRequest(
        path=action.path,
        secret_data=source.secret_data,
        metadata=source.metadata,
        expected_version=expected,
        has_expected_version=True,
        version=action.version,
        writer=action.writer,
    )
    states.call(provider, target, "WriteSecret", request)
