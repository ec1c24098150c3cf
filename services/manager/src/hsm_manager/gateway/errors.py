"""What can go wrong calling an agent: one tree, mapped from gRPC status codes in one place."""

from __future__ import annotations

import grpc


class AgentCallError(Exception):
    """A call to an agent failed; the message is the agent's (agents never put values or PINs in it)."""

    def __init__(self, agent: str, message: str) -> None:
        super().__init__(message)
        self.agent = agent
        self.message = message


class NotFound(AgentCallError):
    """The path (or key) has no live secret on that device."""


class InvalidArgument(AgentCallError):
    """The agent refused the request's input."""


class Conflict(AgentCallError):
    """A compare-and-set or explicit version did not fit the device's current version."""


class DeviceFull(AgentCallError):
    """The device's object budget or memory has no room for the write."""


class Unavailable(AgentCallError):
    """The agent is unreachable, not logged in to its token, or did not answer in time."""


class PinRejected(AgentCallError):
    """The token refused a PIN (only PIN changes report this)."""


class Corrupt(AgentCallError):
    """What the device holds does not verify."""


class Internal(AgentCallError):
    """The agent failed unexpectedly."""


_KINDS: dict[grpc.StatusCode, type[AgentCallError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: DeviceFull,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.FAILED_PRECONDITION: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.DATA_LOSS: Corrupt,
}


def code_name(error: grpc.RpcError) -> str:
    """The status code's name of a failed call (for metrics)."""
    return error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"


def translate(agent: str, error: grpc.RpcError, pin_call: bool = False) -> AgentCallError:
    """The AgentCallError of a failed gRPC call to agent."""
    if not isinstance(error, grpc.Call):
        return Unavailable(agent, type(error).__name__)
    status = error.code()
    message = str(error.details() or status.name)
    if pin_call and status is grpc.StatusCode.FAILED_PRECONDITION:
        return PinRejected(agent, message)
    return _KINDS.get(status, Internal)(agent, message)
