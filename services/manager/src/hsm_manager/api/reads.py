"""Read operations over a device group: list, read, metadata, checksum, versions (plain functions)."""

from __future__ import annotations

from typing import Any

import grpc

from hsmproto.v1 import hsm_pb2

from . import agents, errors, mirror, paging, schemas, states


def list_secrets(
    provider: agents.Provider, group: agents.Group, namespace: str, prefix: str, limit: int, after: str | None
) -> dict[str, Any]:
    """Live secrets under ``namespace/prefix``, newest state per path across devices, sorted and paged."""
    by_path, failed = states.listing(provider, group, f"{namespace}/{prefix}", include_deleted=True)
    if failed and len(failed) == len(group.members):
        raise _unavailable(failed)
    newest = {path: states.newest_entry(entries) for path, entries in by_path.items()}
    page = paging.paginate(
        (path for path, entry in newest.items() if entry.version > 0 and not entry.deleted), limit, after
    )
    return {
        "namespace": namespace,
        "items": [
            {
                "path": path,
                "version": newest[path].version,
                "keys": sorted(newest[path].keys),
                "updatedAt": newest[path].updated_at,
            }
            for path in page.items
        ],
        "continue": page.next_token,
        "unavailableDevices": sorted(failed),
    }


def read_secret(provider: agents.Provider, group: agents.Group, path: str) -> dict[str, Any]:
    """The newest live version of path with base64 values, read from a device that holds it."""
    response, member = _read_newest(provider, group, path)
    return {
        "path": path,
        "version": response.version,
        "data": {
            key: schemas.encode_value(value) for key, value in sorted(response.secret_data.data.items())
        },
        "metadata": metadata_wire(response.metadata),
        "device": member,
    }


def read_data(provider: agents.Provider, group: agents.Group, path: str) -> tuple[dict[str, bytes], int, Any]:
    """The newest live data of path, its version and metadata (for read-modify-write)."""
    response, _ = _read_newest(provider, group, path)
    return dict(response.secret_data.data), response.version, response.metadata


def read_metadata(provider: agents.Provider, group: agents.Group, path: str) -> dict[str, Any]:
    """Metadata, version and keys of the newest live version of path."""
    snapshot = states.path_states(provider, group, path)
    found = _newest_live(path, snapshot)
    member = _member(group, found)
    try:
        response = states.call(provider, member, "ReadMetadata", hsm_pb2.ReadMetadataRequest(path=path))
    except grpc.RpcError as error:
        raise agents.as_api_error(error, member) from None
    return {
        "path": path,
        "version": response.entry.version,
        "keys": sorted(response.entry.keys),
        "updatedAt": response.entry.updated_at,
        "metadata": metadata_wire(response.metadata),
        "device": member.name,
    }


def checksum(provider: agents.Provider, group: agents.Group, path: str) -> dict[str, Any]:
    """Checksum and version of the newest live version of path."""
    state = mirror.require_live(path, _snapshot_or_fail(provider, group, path).states)
    return {"path": path, "version": state.version, "checksum": state.checksum}


def versions(provider: agents.Provider, group: agents.Group, path: str) -> dict[str, Any]:
    """What every device of the group holds for path, and whether they agree."""
    snapshot = states.path_states(provider, group, path)
    devices: list[dict[str, Any]] = []
    for member in group.members:
        if member.name in snapshot.failed:
            error = snapshot.failed[member.name]
            devices.append(
                {
                    "device": member.name,
                    "available": False,
                    "error": {"code": agents.code_of(error).value, "message": agents.message_of(error)},
                }
            )
            continue
        state = snapshot.states[member.name]
        devices.append(
            {
                "device": member.name,
                "available": True,
                "present": state.version > 0,
                "version": state.version,
                "checksum": state.checksum,
                "deleted": state.deleted,
                "updatedAt": state.updated_at,
                "writer": state.writer,
            }
        )
    newest = mirror.current(snapshot.states)
    in_sync = not snapshot.failed and not mirror.plan_repair(path, snapshot.states)
    return {"path": path, "newestVersion": newest.version, "inSync": in_sync, "devices": devices}


def newest_metadata(
    provider: agents.Provider, group: agents.Group, path: str, snapshot: states.Snapshot
) -> hsm_pb2.SecretMetadata:
    """The user metadata of the newest live version (index-served; no value is read)."""
    member = _member(group, _newest_live(path, snapshot))
    try:
        response = states.call(provider, member, "ReadMetadata", hsm_pb2.ReadMetadataRequest(path=path))
    except grpc.RpcError as error:
        raise agents.as_api_error(error, member) from None
    metadata: hsm_pb2.SecretMetadata = response.metadata
    return metadata


def metadata_wire(metadata: hsm_pb2.SecretMetadata) -> dict[str, Any]:
    """User metadata as it travels in responses."""
    return {
        "description": metadata.description,
        "labels": dict(sorted(metadata.labels.items())),
        "format": metadata.format,
        "dataType": metadata.data_type,
        "createdAt": metadata.created_at,
        "source": metadata.source,
    }


def _read_newest(provider: agents.Provider, group: agents.Group, path: str) -> tuple[Any, str]:
    if len(group.members) == 1:
        # One device holds the newest state by definition: skip the state round trip.
        member = group.members[0]
        try:
            return states.call(
                provider, member, "ReadSecret", hsm_pb2.ReadSecretRequest(path=path)
            ), member.name
        except grpc.RpcError as error:
            raise agents.as_api_error(error, member) from None
    snapshot = _snapshot_or_fail(provider, group, path)
    found = _newest_live(path, snapshot)
    member = _member(group, found)
    try:
        response = states.call(provider, member, "ReadSecret", hsm_pb2.ReadSecretRequest(path=path))
    except grpc.RpcError as error:
        raise agents.as_api_error(error, member) from None
    return response, member.name


def _snapshot_or_fail(provider: agents.Provider, group: agents.Group, path: str) -> states.Snapshot:
    snapshot = states.path_states(provider, group, path)
    if not snapshot.states:
        raise _unavailable(snapshot.failed)
    return snapshot


def _newest_live(path: str, snapshot: states.Snapshot) -> str:
    if not snapshot.states:
        raise _unavailable(snapshot.failed)
    mirror.require_live(path, snapshot.states)
    found = mirror.newest(snapshot.states)
    assert found is not None  # require_live passed, so some device holds it
    return found[0]


def _member(group: agents.Group, name: str) -> agents.Member:
    return next(member for member in group.members if member.name == name)


def _unavailable(failed: dict[str, grpc.RpcError]) -> errors.ApiError:
    if not failed:
        return errors.DeviceUnavailable("the HSMDevice has no available agent")
    detail = "; ".join(f"{name}: {agents.message_of(error)}" for name, error in sorted(failed.items()))
    return errors.DeviceUnavailable(f"no device answered: {detail}", {"devices": sorted(failed)})
