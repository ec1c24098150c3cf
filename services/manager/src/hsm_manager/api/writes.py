"""Mirrored writes: every available device of the group gets the same version (max + 1) and metadata.

Each device's write is a compare-and-set against the version this request saw on it, so two racing
requests cannot interleave on one device; whichever device missed a write is repaired later.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from hsmproto.v1 import hsm_pb2

from . import agents, errors, mirror, reads, schemas, states


@dataclasses.dataclass(frozen=True)
class Reply:
    """A write's HTTP status, its response data and the per-device results (for the audit line)."""

    status: int
    data: dict[str, Any]
    results: tuple[mirror.DeviceResult, ...]

    @property
    def partial(self) -> bool:
        """True when some devices missed the write (HTTP 207)."""
        return self.status == errors.STATUS[errors.Code.PARTIAL_FAILURE]


def _create(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    data: Mapping[str, bytes],
    metadata: schemas.Metadata | None,
    writer: str,
) -> Reply:
    """Create path on every device; AlreadyExists when any device holds it live."""
    snapshot = _snapshot(provider, group, path)
    mirror.check_create(path, snapshot.states)
    return _write(provider, group, path, snapshot, data, _metadata(metadata, None), writer, 201)


def _replace(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    data: Mapping[str, bytes],
    metadata: schemas.Metadata | None,
    writer: str,
    expected_version: int | None,
) -> Reply:
    """Replace (or create) path on every device; VersionConflict when expected_version is stale."""
    snapshot = _snapshot(provider, group, path)
    mirror.check_expected_version(path, snapshot.states, expected_version)
    previous = None
    if metadata is None and mirror.current(snapshot.states).live:
        previous = reads.newest_metadata(provider, group, path, snapshot)
    return _write(provider, group, path, snapshot, data, _metadata(metadata, previous), writer, 200)


def _patch(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    changes: Mapping[str, bytes | None],
    metadata: schemas.Metadata | None,
    writer: str,
    expected_version: int | None,
) -> Reply:
    """Merge changes into the newest version of path (null removes a key) and mirror the result."""
    current, version, previous = reads.read_data(provider, group, path)
    if expected_version is not None and expected_version != version:
        raise errors.VersionConflict(
            f"secret {path!r} is at version {version}, not {expected_version}",
            {"path": path, "expectedVersion": expected_version, "currentVersion": version},
        )
    merged = mirror.merge(current, changes)
    schemas.validate_merged(merged)
    snapshot = _snapshot(provider, group, path)
    mirror.check_expected_version(path, snapshot.states, version)
    return _write(provider, group, path, snapshot, merged, _metadata(metadata, previous), writer, 200)


def _delete_key(
    provider: agents.Provider, group: agents.Group, path: str, key: str, writer: str, expected: int | None
) -> Reply:
    """Remove one key (a new version without it); removing the last key deletes the secret."""
    current, version, previous = reads.read_data(provider, group, path)
    if key not in current:
        raise errors.NotFound(f"secret {path!r} has no key {key!r}", {"path": path, "key": key})
    if expected is not None and expected != version:
        raise errors.VersionConflict(
            f"secret {path!r} is at version {version}, not {expected}",
            {"path": path, "expectedVersion": expected, "currentVersion": version},
        )
    remaining = {k: v for k, v in current.items() if k != key}
    if not remaining:
        return _delete(provider, group, path, writer, version)
    snapshot = _snapshot(provider, group, path)
    mirror.check_expected_version(path, snapshot.states, version)
    return _write(provider, group, path, snapshot, remaining, previous, writer, 200)


def _delete(
    provider: agents.Provider, group: agents.Group, path: str, writer: str, expected_version: int | None
) -> Reply:
    """Write a tombstone (version max + 1) on every device that holds path, so it cannot come back."""
    snapshot = _snapshot(provider, group, path)
    mirror.require_live(path, snapshot.states)
    mirror.check_expected_version(path, snapshot.states, expected_version)
    version = mirror.next_version(snapshot.states.values())
    results = _unreachable(snapshot)
    for member in group.members:
        state = snapshot.states.get(member.name)
        if state is None:
            continue
        if state.version == 0:
            # Nothing to resurrect there; the repair leaves such devices alone as well.
            results.append(mirror.DeviceResult(member.name, True, 0))
            continue
        request = hsm_pb2.DeleteSecretRequest(
            path=path,
            expected_version=state.version,
            has_expected_version=True,
            version=version,
            writer=writer,
        )
        results.append(_apply(provider, member, "DeleteSecret", request))
    return _reply(path, version, results, 200)


#: Attempts of a write that lost a race on a device while the caller asked for no particular version.
RACE_ATTEMPTS = 8
#: Upper bound of the random pause before attempt n, times 2**n (seconds): racers spread out.
RACE_BACKOFF = 0.01


def _retried(run: Callable[[], Reply], expected_version: int | None) -> Reply:
    """run, again from fresh device states when it lost a race (ABORTED) and no version was asked for.

    With If-Match the caller wants exactly that version, so a conflict is their answer (412).
    """
    for attempt in range(RACE_ATTEMPTS):
        try:
            return run()
        except errors.VersionConflict:
            if expected_version is not None or attempt == RACE_ATTEMPTS - 1:
                raise
        time.sleep(random.uniform(0, RACE_BACKOFF * 2**attempt))
    raise AssertionError("unreachable")


def create(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    data: Mapping[str, bytes],
    metadata: schemas.Metadata | None,
    writer: str,
) -> Reply:
    """Create path on every device; AlreadyExists when any device holds it live."""
    return _retried(lambda: _create(provider, group, path, data, metadata, writer), None)


def replace(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    data: Mapping[str, bytes],
    metadata: schemas.Metadata | None,
    writer: str,
    expected_version: int | None,
) -> Reply:
    """Replace (or create) path on every device; VersionConflict when expected_version is stale."""
    return _retried(
        lambda: _replace(provider, group, path, data, metadata, writer, expected_version), expected_version
    )


def patch(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    changes: Mapping[str, bytes | None],
    metadata: schemas.Metadata | None,
    writer: str,
    expected_version: int | None,
) -> Reply:
    """Merge changes into the newest version of path (null removes a key) and mirror the result."""
    return _retried(
        lambda: _patch(provider, group, path, changes, metadata, writer, expected_version), expected_version
    )


def delete_key(
    provider: agents.Provider, group: agents.Group, path: str, key: str, writer: str, expected: int | None
) -> Reply:
    """Remove one key (a new version without it); removing the last key deletes the secret."""
    return _retried(lambda: _delete_key(provider, group, path, key, writer, expected), expected)


def delete(
    provider: agents.Provider, group: agents.Group, path: str, writer: str, expected_version: int | None
) -> Reply:
    """Write a tombstone (version max + 1) on every device that holds path, so it cannot come back."""
    return _retried(lambda: _delete(provider, group, path, writer, expected_version), expected_version)


def _write(
    provider: agents.Provider,
    group: agents.Group,
    path: str,
    snapshot: states.Snapshot,
    data: Mapping[str, bytes],
    metadata: hsm_pb2.SecretMetadata,
    writer: str,
    success_status: int,
) -> Reply:
    version = mirror.next_version(snapshot.states.values())
    results = _unreachable(snapshot)
    for member in group.members:
        state = snapshot.states.get(member.name)
        if state is None:
            continue
        request = hsm_pb2.WriteSecretRequest(
            path=path,
            secret_data=hsm_pb2.SecretData(data=dict(data)),
            metadata=metadata,
            expected_version=state.version,
            has_expected_version=True,
            version=version,
            writer=writer,
        )
        results.append(_apply(provider, member, "WriteSecret", request))
    return _reply(path, version, results, success_status)


def _apply(
    provider: agents.Provider, member: agents.Member, method: str, request: object
) -> mirror.DeviceResult:
    try:
        response = states.call(provider, member, method, request)
    except grpc.RpcError as error:
        return mirror.DeviceResult(
            member.name, False, code=agents.code_of(error), message=agents.message_of(error)
        )
    return mirror.DeviceResult(member.name, True, response.version)


def _reply(path: str, version: int, results: list[mirror.DeviceResult], success_status: int) -> Reply:
    ordered = tuple(sorted(results, key=lambda result: result.member))
    result = mirror.outcome(ordered, success_status)
    data = {"path": path, "version": version, "devices": [r.to_wire() for r in ordered]}
    return Reply(result.status, data, ordered)


def _snapshot(provider: agents.Provider, group: agents.Group, path: str) -> states.Snapshot:
    snapshot = states.path_states(provider, group, path)
    if not snapshot.states:
        detail = "; ".join(
            f"{name}: {agents.message_of(err)}" for name, err in sorted(snapshot.failed.items())
        )
        raise errors.DeviceUnavailable(
            f"no device of HSMDevice {group.device!r} answered: {detail or 'none'}"
        )
    return snapshot


def _unreachable(snapshot: states.Snapshot) -> list[mirror.DeviceResult]:
    return [
        mirror.DeviceResult(name, False, code=agents.code_of(error), message=agents.message_of(error))
        for name, error in snapshot.failed.items()
    ]


def _metadata(
    given: schemas.Metadata | None, previous: hsm_pb2.SecretMetadata | None
) -> hsm_pb2.SecretMetadata:
    """The metadata to write: the given one (creation time kept), else the previous one unchanged."""
    if given is None:
        return previous if previous is not None else hsm_pb2.SecretMetadata(created_at=_now())
    created = previous.created_at if previous is not None and previous.created_at else _now()
    return hsm_pb2.SecretMetadata(
        description=given.description,
        labels=given.labels,
        format=given.format,
        data_type=given.data_type,
        created_at=created,
        source=given.source or "rest-api",
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
