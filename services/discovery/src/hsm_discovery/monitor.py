"""Follows USB hotplug through a libudev monitor (one of the two modules that import pyudev)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pyudev  # type: ignore[import-untyped]

from . import metrics

log = logging.getLogger(__name__)


class Monitor:
    """Calls on_change once per burst of USB add/remove events, debounce seconds after its first event.

    A plug-in produces a burst (the device, then its interfaces); one rescan per burst is enough.
    """

    def __init__(
        self,
        context: pyudev.Context,
        on_change: Callable[[], None],
        debounce: float,
    ) -> None:
        self._monitor = pyudev.Monitor.from_netlink(context)
        self._monitor.filter_by("usb")
        self._on_change = on_change
        self._debounce = debounce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udev-monitor", daemon=True)

    def start(self) -> None:
        self._monitor.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        pending_since: float | None = None
        while not self._stop.is_set():
            timeout = 0.5
            if pending_since is not None:
                timeout = max(0.0, pending_since + self._debounce - time.monotonic())
            device = self._monitor.poll(timeout=timeout)
            if device is not None and device.action in ("add", "remove"):
                metrics.UDEV_EVENTS.labels(action=device.action).inc()
                log.debug("udev_event", extra={"action": device.action, "sys_path": device.sys_path})
                if pending_since is None:
                    pending_since = time.monotonic()
            if pending_since is not None and time.monotonic() >= pending_since + self._debounce:
                pending_since = None
                self._on_change()
