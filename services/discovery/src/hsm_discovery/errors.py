"""The discovery service's exceptions; health.py makes them HTTP answers, plugin.servicer gRPC codes."""

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


class PluginError(DiscoveryError):
    """A device plugin could not serve its socket or register with the kubelet; retried with backoff."""


class AllocationRefused(DiscoveryError):
    """The kubelet asked a device plugin for a device it cannot give; the pod's admission fails."""


class UnknownDevice(AllocationRefused):
    """The device ID is not one the plugin offers."""


class DeviceUnhealthy(AllocationRefused):
    """The device is offered but unplugged (or has no device node to give)."""
