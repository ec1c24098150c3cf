"""The API's view of agents: device groups, a provider seam for tests, and gRPC errors mapped to API errors.

The provider is the cosmicpython bootstrap seam: production wires the operator's agent registry
(``registry_provider``), tests hand in a static list of real agents on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import grpc

from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

from . import errors

#: Deadline of one unary call to an agent; a dead agent must not hold a request for long (seconds).
CALL_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class Member:
    """One agent of a device group (one physical HSM)."""

    name: str
    """Agent name (unique within the group); shown in per-device results."""
    address: str
    """host:port of its gRPC server."""
    serial: str = ""
    node: str = ""


@dataclasses.dataclass(frozen=True)
class Group:
    """The available agents of one HSMDevice."""

    device: str
    namespace: str
    members: tuple[Member, ...]


class Provider(Protocol):
    """Where the API finds agents."""

    def devices(self) -> list[str]:
        """Names of the HSMDevices that have agents."""

    def group(self, device: str) -> Group:
        """The agents of device (possibly none)."""

    def stub(self, member: Member) -> hsm_pb2_grpc.HSMAgentStub:
        """A stub for member's agent; channels are reused."""


class StaticProvider:
    """A fixed list of agents per device (tests, benchmarks, a manager-less dev setup)."""

    def __init__(
        self,
        groups: Mapping[str, Sequence[Member]],
        namespace: str,
        tls: channel.ClientTLS | None = None,
    ) -> None:
        self._groups = {device: tuple(members) for device, members in groups.items()}
        self._namespace = namespace
        self._tls = tls
        # Guards the channel cache: gunicorn threads may ask for the same agent at once.
        self._lock = threading.Lock()
        self._stubs: dict[str, hsm_pb2_grpc.HSMAgentStub] = {}

    def devices(self) -> list[str]:
        return sorted(self._groups)

    def group(self, device: str) -> Group:
        if device not in self._groups:
            raise errors.DeviceNotFound(f"HSMDevice {device!r} not found", {"field": "device"})
        return Group(device, self._namespace, self._groups[device])

    def stub(self, member: Member) -> hsm_pb2_grpc.HSMAgentStub:
        with self._lock:
            found = self._stubs.get(member.address)
            if found is None:
                found = channel.agent_stub(channel.open_channel(member.address, self._tls))
                self._stubs[member.address] = found
            return found


def resolve(provider: Provider, device: str | None) -> Group:
    """The group of device, or of the only device when device is None."""
    if device:
        return provider.group(device)
    known = provider.devices()
    if not known:
        raise errors.DeviceUnavailable("no HSMDevice has agents")
    if len(known) > 1:
        raise errors.AmbiguousDevice(
            f"{len(known)} HSMDevices exist ({', '.join(known)}): name one with 'device'", {"field": "device"}
        )
    return provider.group(known[0])


_CODES: dict[grpc.StatusCode, errors.Code] = {
    grpc.StatusCode.NOT_FOUND: errors.Code.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: errors.Code.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: errors.Code.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS: errors.Code.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED: errors.Code.VERSION_CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.Code.DEVICE_FULL,
    grpc.StatusCode.UNAVAILABLE: errors.Code.DEVICE_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Code.DEVICE_UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION: errors.Code.DEVICE_UNAVAILABLE,
    grpc.StatusCode.CANCELLED: errors.Code.DEVICE_UNAVAILABLE,
}


def code_of(error: grpc.RpcError, pin_call: bool = False) -> errors.Code:
    """The API code of an agent's gRPC error (the one place gRPC codes become API codes)."""
    status = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    if pin_call and status is grpc.StatusCode.FAILED_PRECONDITION:
        return errors.Code.PIN_REJECTED
    return _CODES.get(status, errors.Code.INTERNAL)


def message_of(error: grpc.RpcError) -> str:
    """The agent's error message (agents never put values or PINs into it)."""
    return str(error.details()) if isinstance(error, grpc.Call) else type(error).__name__


def as_api_error(error: grpc.RpcError, member: Member) -> errors.ApiError:
    """An agent's gRPC error as the ApiError a single-device read reports."""
    code = code_of(error)
    kind: Callable[[str, dict[str, object] | None], errors.ApiError] = _ERROR_TYPES.get(code, errors.ApiError)
    return kind(f"{member.name}: {message_of(error)}", {"device": member.name})


_ERROR_TYPES: dict[errors.Code, type[errors.ApiError]] = {
    errors.Code.NOT_FOUND: errors.NotFound,
    errors.Code.INVALID_ARGUMENT: errors.InvalidArgument,
    errors.Code.ALREADY_EXISTS: errors.AlreadyExists,
    errors.Code.VERSION_CONFLICT: errors.VersionConflict,
    errors.Code.DEVICE_FULL: errors.DeviceFull,
    errors.Code.DEVICE_UNAVAILABLE: errors.DeviceUnavailable,
}
