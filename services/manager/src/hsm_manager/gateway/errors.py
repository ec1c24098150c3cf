"""What can go wrong calling an agent: one tree, mapped from gRPC status codes in one place."""

from __future__ import annotations

import datetime
import re

import grpc

from . import pki


class AgentCallError(Exception):
    """A call to an agent failed; the message is the agent's (agents never put values or PINs in it)."""

    def __init__(self, agent: str, message: str) -> None:
        super().__init__(message)
        self.agent = agent
        self.message = message

    @property
    def summary(self) -> str:
        """What a status or log line shows of the failure: its kind, which says what to look at."""
        return type(self).__name__


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


class Untrusted(Unavailable):
    """The TLS handshake refused the agent's certificate: expired, not yet valid, signed by another CA or
    issued for another agent. The message says which, in words a user can act on."""

    def __init__(self, agent: str, message: str, *, expired: bool = False) -> None:
        super().__init__(agent, message)
        self.expired = expired
        """Refused because its notAfter has passed (``expired_at`` says when)."""

    @property
    def summary(self) -> str:
        # The kind alone would not tell a bad certificate from a dead agent.
        return self.message


class Unsupported(AgentCallError):
    """The device cannot do what was asked (e.g. it has no random number generator)."""


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
    grpc.StatusCode.UNIMPLEMENTED: Unsupported,
}


_NOT_OURS = f"its TLS certificate is not signed by the manager's CA (Secret {pki.CA_SECRET})"
_EXPIRED = "its TLS certificate has expired"
#: How gRPC (BoringSSL's verify result) words a refused server certificate → what to tell the user.
_REFUSALS: tuple[tuple[str, str], ...] = (
    ("certificate has expired", _EXPIRED),
    ("certificate is not yet valid", "its TLS certificate is not valid yet"),
    ("unable to get local issuer certificate", _NOT_OURS),
    ("self signed certificate", _NOT_OURS),
)
_VERIFY_FAILED = re.compile(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)")
_OTHER_NAME = "Hostname Verification Check failed"


def _refused_certificate(agent: str, details: str) -> str | None:
    """What was wrong with the agent's certificate, when details say the handshake refused it."""
    found = _VERIFY_FAILED.search(details)
    if found is not None:
        reason = found.group(1).strip()
        return next(
            (said for words, said in _REFUSALS if words in reason),
            f"its TLS certificate does not verify ({reason})",
        )
    if _OTHER_NAME in details:
        return f"its TLS certificate is not issued for {agent}"
    return None


def expired_at(agent: str, not_after: datetime.datetime) -> Untrusted:
    """The refusal of agent's expired certificate, saying when it expired (UTC, to the second)."""
    when = not_after.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Untrusted(agent, f"{_EXPIRED} (on {when})", expired=True)


def code_name(error: grpc.RpcError) -> str:
    """The status code's name of a failed call (for metrics)."""
    return error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"


def translate(agent: str, error: grpc.RpcError, pin_call: bool = False) -> AgentCallError:
    """The AgentCallError of a failed gRPC call to agent."""
    if not isinstance(error, grpc.Call):
        return Unavailable(agent, type(error).__name__)
    status = error.code()
    message = str(error.details() or status.name)
    if status is grpc.StatusCode.UNAVAILABLE:
        refused = _refused_certificate(agent, message)
        if refused is not None:
            return Untrusted(agent, refused, expired=refused == _EXPIRED)
    if pin_call and status is grpc.StatusCode.FAILED_PRECONDITION:
        return PinRejected(agent, message)
    return _KINDS.get(status, Internal)(agent, message)
