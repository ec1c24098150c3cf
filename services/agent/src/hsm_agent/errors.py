"""The agent's exception hierarchy; server.py maps each class to one gRPC status code."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent reports to a caller; the message is safe to show (no secret values)."""


class InvalidInput(AgentError):
    """A path, key, secret or argument breaks the rules (INVALID_ARGUMENT)."""


class NotFound(AgentError):
    """The path (or key) has no live secret (NOT_FOUND)."""


class Conflict(AgentError):
    """A compare-and-set or explicit version does not fit the current version (ABORTED)."""


class DeviceUnavailable(AgentError):
    """The token is gone or not answering; the agent is recovering (UNAVAILABLE)."""


class ModuleUnavailable(DeviceUnavailable):
    """The PKCS#11 module cannot be loaded (missing file, not a PKCS#11 module)."""


class Unsupported(AgentError):
    """The token cannot do what was asked, e.g. it has no random number generator (UNIMPLEMENTED)."""


class TokenFull(AgentError):
    """The token has no room for the new objects (RESOURCE_EXHAUSTED)."""


class TooManyReaders(AgentError):
    """The agent follows as many readers as it will (RESOURCE_EXHAUSTED); the reader reads without copies."""


class NotLoggedIn(AgentError):
    """The agent is not logged in: wrong or missing PIN, locked token, wrong serial (FAILED_PRECONDITION)."""


class WrongPin(NotLoggedIn):
    """The token rejected a PIN."""


class Corrupt(AgentError):
    """Stored objects do not verify (checksum or format); nothing is served from them (DATA_LOSS)."""
