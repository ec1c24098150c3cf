"""The discovery service's exceptions; health.py is the one place that turns them into HTTP answers."""

from __future__ import annotations


class DiscoveryError(Exception):
    """Base of every error discovery raises on purpose."""


class ConfigError(DiscoveryError):
    """The command line or environment is unusable (missing POD_NAME, bad address, unreadable file)."""


class ApiError(DiscoveryError):
    """The Kubernetes API refused or could not be reached; callers retry with backoff."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WatchExpired(ApiError):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class ReportError(DiscoveryError):
    """A report could not be written to its sink."""
