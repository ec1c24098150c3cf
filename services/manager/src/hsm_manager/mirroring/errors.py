"""How an operation on a device group failed; each failure has a stable name the API reports as its code."""

from __future__ import annotations

import enum
from typing import Any

from hsm_manager.gateway import errors as agent_errors


class Failure(enum.StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    DEVICE_UNAVAILABLE = "DEVICE_UNAVAILABLE"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    AMBIGUOUS_DEVICE = "AMBIGUOUS_DEVICE"
    DEVICE_FULL = "DEVICE_FULL"
    PIN_REJECTED = "PIN_REJECTED"
    NO_RANDOM_GENERATOR = "NO_RANDOM_GENERATOR"
    INTERNAL = "INTERNAL"


class MirrorError(Exception):
    """An operation failed; the message never holds a secret value or PIN."""

    failure = Failure.INTERNAL

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidArgument(MirrorError):
    failure = Failure.INVALID_ARGUMENT


class NotFound(MirrorError):
    failure = Failure.NOT_FOUND


class AlreadyExists(MirrorError):
    failure = Failure.ALREADY_EXISTS


class VersionConflict(MirrorError):
    failure = Failure.VERSION_CONFLICT


class DeviceUnavailable(MirrorError):
    failure = Failure.DEVICE_UNAVAILABLE


class DeviceNotFound(MirrorError):
    failure = Failure.DEVICE_NOT_FOUND


class AmbiguousDevice(MirrorError):
    failure = Failure.AMBIGUOUS_DEVICE


class DeviceFull(MirrorError):
    failure = Failure.DEVICE_FULL


class PinRejected(MirrorError):
    failure = Failure.PIN_REJECTED


class NoRandomGenerator(MirrorError):
    failure = Failure.NO_RANDOM_GENERATOR


BY_FAILURE: dict[Failure, type[MirrorError]] = {
    cls.failure: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        VersionConflict,
        DeviceUnavailable,
        DeviceNotFound,
        AmbiguousDevice,
        DeviceFull,
        PinRejected,
        NoRandomGenerator,
        MirrorError,
    )
}

#: The one translation of an agent's failure into an operation's.
_FROM_AGENT: dict[type[agent_errors.AgentCallError], Failure] = {
    agent_errors.NotFound: Failure.NOT_FOUND,
    agent_errors.InvalidArgument: Failure.INVALID_ARGUMENT,
    agent_errors.Conflict: Failure.VERSION_CONFLICT,
    agent_errors.DeviceFull: Failure.DEVICE_FULL,
    agent_errors.Unavailable: Failure.DEVICE_UNAVAILABLE,
    agent_errors.Untrusted: Failure.DEVICE_UNAVAILABLE,
    agent_errors.PinRejected: Failure.PIN_REJECTED,
    agent_errors.Unsupported: Failure.NO_RANDOM_GENERATOR,
}


def failure_of(error: agent_errors.AgentCallError) -> Failure:
    return _FROM_AGENT.get(type(error), Failure.INTERNAL)


def from_agent(error: agent_errors.AgentCallError) -> MirrorError:
    """A single device's failure as the operation's error, naming the device."""
    return BY_FAILURE[failure_of(error)](f"{error.agent}: {error.message}", {"device": error.agent})
