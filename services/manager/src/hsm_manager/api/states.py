"""Gathering what each agent of a group holds (index-served RPCs, no PKCS#11 reads on the agents)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import grpc

from hsmproto.v1 import hsm_pb2

from . import agents, mirror
from . import metrics as _metrics


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """States of one path on the reachable members, and the members that could not be asked."""

    states: dict[str, mirror.PathState]
    failed: dict[str, grpc.RpcError]


def path_states(provider: agents.Provider, group: agents.Group, path: str) -> Snapshot:
    """Every member's state of path, tombstones included (ABSENT when it has none); unreachable ones apart."""
    states: dict[str, mirror.PathState] = {}
    failed: dict[str, grpc.RpcError] = {}
    request = hsm_pb2.ListSecretsRequest(prefix=path, include_deleted=True)
    for member in group.members:
        try:
            response = call(provider, member, "ListSecrets", request)
        except grpc.RpcError as error:
            failed[member.name] = error
            continue
        # A prefix listing also returns longer paths; only the exact one counts.
        exact = [entry for entry in response.entries if entry.path == path]
        states[member.name] = state_of(exact[0]) if exact else mirror.ABSENT
    return Snapshot(states, failed)


def state_of(entry: hsm_pb2.SecretEntry) -> mirror.PathState:
    """A PathState from an agent's index entry."""
    return mirror.PathState(
        version=entry.version,
        checksum=entry.checksum,
        deleted=entry.deleted,
        updated_at=entry.updated_at,
        writer=entry.writer,
    )


def newest_entry(entries: Mapping[str, hsm_pb2.SecretEntry]) -> hsm_pb2.SecretEntry:
    """The newest of one path's entries across members, in the mirror's conflict order."""
    if len(entries) == 1:
        # The common case of a listing: no order to decide, so no PathState per entry.
        return next(iter(entries.values()))
    found = mirror.newest({member: state_of(entry) for member, entry in entries.items()})
    assert found is not None  # index entries carry versions >= 1
    return entries[found[0]]


def listing(
    provider: agents.Provider, group: agents.Group, prefix: str, include_deleted: bool
) -> tuple[dict[str, dict[str, hsm_pb2.SecretEntry]], dict[str, grpc.RpcError]]:
    """path → member → entry under prefix on the reachable members, and the unreachable members."""
    by_path: dict[str, dict[str, hsm_pb2.SecretEntry]] = {}
    failed: dict[str, grpc.RpcError] = {}
    request = hsm_pb2.ListSecretsRequest(prefix=prefix, include_deleted=include_deleted)
    for member in group.members:
        try:
            response = call(provider, member, "ListSecrets", request)
        except grpc.RpcError as error:
            failed[member.name] = error
            continue
        for entry in response.entries:
            by_path.setdefault(entry.path, {})[member.name] = entry
    return by_path, failed


def call(
    provider: agents.Provider, member: agents.Member, method: str, request: object, wait: bool = False
) -> Any:
    """One unary RPC to member with the call deadline, counted in the agent-call metrics.

    wait: let the call ride out a reconnect (up to the deadline) instead of failing at once while
    the channel backs off; for calls that must reach every device (PIN changes).
    """
    stub = provider.stub(member)
    with _metrics.agent_call(method) as outcome:
        try:
            response = getattr(stub, method)(request, timeout=agents.CALL_TIMEOUT, wait_for_ready=wait)
        except grpc.RpcError as error:
            outcome.set(error.code().name if isinstance(error, grpc.Call) else "UNKNOWN")
            raise
        outcome.set("OK")
        return response
