"""Response shapes of the mirroring service's results and of the HSMPools (camelCase JSON, base64 values)."""

from __future__ import annotations

import datetime
from typing import Any

from hsm_common import models
from hsm_manager.decide import model
from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import devices, gather, reads
from hsm_manager.mirroring import errors as mirror_errors

from . import namespaces, paging, pools, schemas


def secret_list(listed: reads.Listed, namespace: str) -> dict[str, Any]:
    """One page of the live secrets under a namespace's prefix, newest copy per path."""
    last = next(reversed(listed.entries), None)
    return {
        "namespace": namespace,
        "items": [
            {
                "path": path,
                "version": entry.state.version,
                "keys": sorted(entry.keys),
                "updatedAt": entry.state.updated_at,
            }
            for path, entry in listed.entries.items()
        ],
        "continue": paging.encode_token(last) if listed.more and last is not None else None,
        "unavailableDevices": list(listed.unavailable),
    }


def secret(found: model.Secret, device: str) -> dict[str, Any]:
    return {
        "path": found.path,
        "version": found.version,
        "data": {key: schemas.encode_value(value) for key, value in sorted(found.data.items())},
        "metadata": metadata(found.metadata),
        "device": device,
    }


def secret_metadata(entry: model.Entry, meta: model.Metadata, device: str) -> dict[str, Any]:
    return {
        "path": entry.path,
        "version": entry.state.version,
        "keys": sorted(entry.keys),
        "updatedAt": entry.state.updated_at,
        "metadata": metadata(meta),
        "device": device,
    }


def checksum(path: str, state: model.PathState) -> dict[str, Any]:
    return {"path": path, "version": state.version, "checksum": state.checksum}


def versions(path: str, found: reads.Versions, group_members: list[str]) -> dict[str, Any]:
    """What every device holds for path, and whether they agree."""
    snapshot: gather.Snapshot = found.snapshot
    out: list[dict[str, Any]] = []
    for name in group_members:
        if name in snapshot.failed:
            out.append({"device": name, "available": False, "error": _error(snapshot.failed[name])})
            continue
        state = snapshot.states[name]
        out.append(
            {
                "device": name,
                "available": True,
                "present": state.version > 0,
                "version": state.version,
                "checksum": state.checksum,
                "deleted": state.deleted,
                "updatedAt": state.updated_at,
                "writer": state.writer,
            }
        )
    return {"path": path, "newestVersion": found.newest.version, "inSync": found.in_sync, "devices": out}


def metadata(meta: model.Metadata) -> dict[str, Any]:
    """User metadata as it travels in responses."""
    return {
        "description": meta.description,
        "labels": dict(sorted(meta.labels.items())),
        "format": meta.format,
        "dataType": meta.data_type,
        "createdAt": meta.created_at,
        "source": meta.source,
    }


def metadata_of(body: schemas.Metadata | None) -> model.Metadata | None:
    """The metadata a request sets (its source defaults to this API); None keeps the current one."""
    if body is None:
        return None
    return model.Metadata(
        description=body.description,
        labels=dict(body.labels),
        format=body.format,
        data_type=body.data_type,
        source=body.source or "rest-api",
    )


def device_info(
    device: str, namespace: str, answers: list[devices.Answer[model.DeviceInfo]]
) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for answer in answers:
        member = answer.member
        entry: dict[str, Any] = {"device": member.name, "serial": member.serial, "node": member.node}
        info = answer.value
        if info is None:
            entry.update(available=False, error=_error(answer.error))
        else:
            entry.update(
                available=True,
                label=info.label,
                manufacturer=info.manufacturer,
                model=info.model,
                serialNumber=info.serial_number,
                firmwareVersion=info.firmware_version,
                maxObjectSize=info.max_object_size,
                secretCount=info.secret_count,
            )
            if info.capacity is not None:
                entry["capacity"] = _capacity(info.capacity)
        out.append(entry)
    return {"hsmDevice": device, "namespace": namespace, "devices": out}


def _capacity(capacity: model.Capacity) -> dict[str, int]:
    figures = {
        "maxObjects": capacity.max_objects,
        "usedObjects": capacity.used_objects,
        "freeObjects": capacity.free_objects,
        "ownObjects": capacity.own_objects,
        "ownBytes": capacity.own_bytes,
    }
    # Many tokens do not report their memory: absent, not zero.
    if capacity.total_memory is not None:
        figures["totalMemory"] = capacity.total_memory
    if capacity.free_memory is not None:
        figures["freeMemory"] = capacity.free_memory
    return figures


def device_status(device: str, answers: list[devices.Answer[model.Health]]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for answer in answers:
        health = answer.value
        if health is None:
            message = answer.error.message if answer.error else ""
            out.append(
                {
                    "device": answer.member.name,
                    "available": False,
                    "connected": False,
                    "status": "unreachable",
                    "message": message,
                }
            )
        else:
            out.append(
                {
                    "device": answer.member.name,
                    "available": True,
                    "connected": health.connected,
                    "status": health.status,
                    "message": health.message,
                }
            )
    return {
        "hsmDevice": device,
        "availableDevices": sum(1 for entry in out if entry["connected"]),
        "totalDevices": len(out),
        "devices": out,
    }


def visible_namespaces(found: namespaces.Visible) -> dict[str, Any]:
    """The namespaces a caller may list secrets in, and how sure the list is."""
    return {
        "namespaces": found.namespaces,
        "complete": found.complete,
        "truncated": found.truncated,
        "maxReviewed": namespaces.MAX_REVIEWED,
    }


def pool_list(namespace: str, found: list[pools.Pool]) -> dict[str, Any]:
    """Every HSMPool's phase, device counts and conditions."""
    return {"namespace": namespace, "pools": [_pool(pool) for pool in found]}


def _pool(pool: pools.Pool) -> dict[str, Any]:
    status = pool.status or models.HSMPoolStatus()
    return {
        "name": pool.name,
        "hsmDevice": pool.device,
        "phase": status.phase.value if status.phase else None,
        "totalDevices": status.total_devices,
        "availableDevices": status.available_devices,
        "lastAggregationTime": _time(status.last_aggregation_time),
        "conditions": [
            {
                "type": condition.type,
                "status": condition.status.value,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": _time(condition.last_transition_time),
            }
            for condition in status.conditions
        ],
        "error": pool.error,
    }


def _time(at: datetime.datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _error(error: agent_errors.AgentCallError | None) -> dict[str, str]:
    if error is None:
        return {"code": mirror_errors.Failure.INTERNAL.value, "message": ""}
    return {"code": mirror_errors.failure_of(error).value, "message": error.message}
