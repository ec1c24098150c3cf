"""One HSMDevice's extended resource: the devices its plugin offers and how the plugin stands."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hsm_common import constants, report

from . import devices


class Resource:
    """Shared by the reporting loop (offers devices), the gRPC threads (read them) and the supervisor.

    One condition guards all state: ListAndWatch streams wait on it for the next device list.
    """

    def __init__(self, hsm_device: str, on_status: Callable[[], None]) -> None:
        """on_status is called, outside the lock, whenever registration or the last error changes."""
        self.hsm_device = hsm_device
        self.name = constants.resource_name(hsm_device)
        self._on_status = on_status
        self._changed = threading.Condition()
        self._devices: tuple[devices.PluginDevice, ...] = ()
        self._version = 0
        self._registered = False
        self._error: str | None = None

    def offer(self, offered: tuple[devices.PluginDevice, ...]) -> None:
        """Make offered the device list, waking the ListAndWatch streams when it differs."""
        with self._changed:
            if offered == self._devices:
                return
            self._devices = offered
            self._version += 1
            self._changed.notify_all()

    def current(self) -> tuple[devices.PluginDevice, ...]:
        with self._changed:
            return self._devices

    def next_list(self, seen: int, timeout: float) -> tuple[int, tuple[devices.PluginDevice, ...]] | None:
        """(version, devices) once the version is past seen; None after timeout or wake_streams."""
        with self._changed:
            if self._version == seen:
                self._changed.wait(timeout)
            if self._version == seen:
                return None
            return self._version, self._devices

    def wake_streams(self) -> None:
        """Let every waiting ListAndWatch stream look at its RPC again (it may have ended)."""
        with self._changed:
            self._changed.notify_all()

    def registered(self) -> None:
        self._set(registered=True, error=None)

    def unregistered(self, error: str | None) -> None:
        self._set(registered=False, error=error)

    def allocated(self) -> None:
        """An allocation succeeded: an earlier allocation failure no longer describes a registered plugin."""
        with self._changed:
            changed = self._registered and self._error is not None
            if changed:
                self._error = None
        if changed:
            self._on_status()

    def refused(self, error: str) -> None:
        self._set(registered=None, error=error)

    def _set(self, registered: bool | None, error: str | None) -> None:
        """Record registration (None keeps it) and the last error; tell on_status when either changed."""
        with self._changed:
            before = (self._registered, self._error)
            if registered is not None:
                self._registered = registered
            self._error = error
            changed = before != (self._registered, self._error)
        if changed:
            self._on_status()

    def status(self) -> report.PluginStatus:
        with self._changed:
            return report.PluginStatus(
                resource=self.name,
                registered=self._registered,
                healthy=sum(d.healthy for d in self._devices),
                error=self._error,
            )
