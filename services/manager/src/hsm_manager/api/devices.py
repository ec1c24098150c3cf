"""Device operations: per-device info and status, and PIN changes across a whole HSMDevice."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc

from hsmproto.v1 import hsm_pb2

from . import agents, errors, states

log = logging.getLogger(__name__)


class PinStore(Protocol):
    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        """Store new_pin where the device's agents read their PIN (the HSMDevice's PIN Secret)."""


def info(provider: agents.Provider, group: agents.Group) -> dict[str, Any]:
    """GetInfo of every agent of the group (unreachable ones reported, not fatal)."""
    devices: list[dict[str, Any]] = []
    for member in group.members:
        entry: dict[str, Any] = {"device": member.name, "serial": member.serial, "node": member.node}
        try:
            response = states.call(provider, member, "GetInfo", hsm_pb2.GetInfoRequest())
        except grpc.RpcError as error:
            entry.update(
                available=False,
                error={"code": agents.code_of(error).value, "message": agents.message_of(error)},
            )
        else:
            hsm = response.hsm_info
            entry.update(
                available=True,
                label=hsm.label,
                manufacturer=hsm.manufacturer,
                model=hsm.model,
                serialNumber=hsm.serial_number,
                firmwareVersion=hsm.firmware_version,
                maxObjectSize=response.max_object_size,
                secretCount=response.secret_count,
            )
            if response.HasField("capacity"):
                entry["capacity"] = _capacity(response.capacity)
        devices.append(entry)
    return {"hsmDevice": group.device, "namespace": group.namespace, "devices": devices}


def _capacity(capacity: hsm_pb2.Capacity) -> dict[str, int]:
    figures = {
        "maxObjects": capacity.max_objects,
        "usedObjects": capacity.used_objects,
        "freeObjects": capacity.free_objects,
        "ownObjects": capacity.own_objects,
        "ownBytes": capacity.own_bytes,
    }
    # Many tokens do not report their memory: absent, not zero.
    if capacity.HasField("total_memory"):
        figures["totalMemory"] = capacity.total_memory
    if capacity.HasField("free_memory"):
        figures["freeMemory"] = capacity.free_memory
    return figures


def status(provider: agents.Provider, group: agents.Group) -> dict[str, Any]:
    """Health and connection of every agent of the group and the group's overall availability."""
    devices: list[dict[str, Any]] = []
    for member in group.members:
        entry: dict[str, Any] = {"device": member.name}
        try:
            health = states.call(provider, member, "Health", hsm_pb2.HealthRequest())
            connected = states.call(provider, member, "IsConnected", hsm_pb2.IsConnectedRequest())
        except grpc.RpcError as error:
            entry.update(
                available=False, connected=False, status="unreachable", message=agents.message_of(error)
            )
        else:
            entry.update(
                available=True, connected=connected.connected, status=health.status, message=health.message
            )
        devices.append(entry)
    up = sum(1 for entry in devices if entry["connected"])
    return {
        "hsmDevice": group.device,
        "availableDevices": up,
        "totalDevices": len(devices),
        "devices": devices,
    }


def change_pin(
    provider: agents.Provider, group: agents.Group, pins: PinStore, old_pin: str, new_pin: str
) -> dict[str, Any]:
    """Change the PIN on every device of the group, then the PIN Secret; all or nothing.

    When one device refuses, the devices already changed are set back to the old PIN, so the group
    never ends up with two PINs. Neither PIN appears in results, logs or errors.
    """
    if not group.members:
        raise errors.DeviceUnavailable(f"HSMDevice {group.device!r} has no available agent")
    for member in group.members:
        # Refuse up front when a device is unreachable: it would keep the old PIN while the Secret moves on.
        try:
            states.call(provider, member, "IsConnected", hsm_pb2.IsConnectedRequest(), wait=True)
        except grpc.RpcError as error:
            raise errors.DeviceUnavailable(
                f"{member.name} is unreachable; no PIN was changed: {agents.message_of(error)}",
                {"device": member.name},
            ) from None
    changed: list[agents.Member] = []
    for member in group.members:
        try:
            states.call(
                provider,
                member,
                "ChangePIN",
                hsm_pb2.ChangePINRequest(old_pin=old_pin, new_pin=new_pin),
                wait=True,
            )
        except grpc.RpcError as error:
            code = agents.code_of(error, pin_call=True)
            rolled_back = _roll_back(provider, changed, old_pin, new_pin)
            kind = _PIN_ERRORS.get(code, errors.DeviceUnavailable)
            raise kind(
                f"{member.name} refused the PIN change: {agents.message_of(error)}",
                {"device": member.name, "rolledBack": rolled_back},
            ) from None
        changed.append(member)
    try:
        pins.update_pin(group.namespace, group.device, new_pin)
    except errors.ApiError as error:
        # Agents re-read the Secret when they log in again: devices must keep the PIN it holds.
        rolled_back = _roll_back(provider, changed, old_pin, new_pin)
        error.details = {**error.details, "rolledBack": rolled_back}
        raise
    return {
        "hsmDevice": group.device,
        "devices": [member.name for member in changed],
        "pinSecretUpdated": True,
    }


_PIN_ERRORS: dict[errors.Code, type[errors.ApiError]] = {
    errors.Code.PIN_REJECTED: errors.PinRejected,
    errors.Code.INVALID_ARGUMENT: errors.InvalidArgument,
}


def _roll_back(
    provider: agents.Provider, changed: list[agents.Member], old_pin: str, new_pin: str
) -> list[str]:
    done: list[str] = []
    for member in changed:
        try:
            states.call(
                provider,
                member,
                "ChangePIN",
                hsm_pb2.ChangePINRequest(old_pin=new_pin, new_pin=old_pin),
                wait=True,
            )
        except grpc.RpcError as error:
            log.error("pin_rollback_failed", extra={"device": member.name, "error": agents.message_of(error)})
        else:
            done.append(member.name)
    return done
