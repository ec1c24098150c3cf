"""Follows USB hotplug through libudev monitors (one of the two modules that import pyudev)."""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable

import pyudev  # type: ignore[import-untyped]

from . import metrics

log = logging.getLogger(__name__)

SOURCES = ("udev", "kernel")
"""Both netlink sources: udevd re-broadcasts events after its rules only into the host's network namespace
(host processes, hostNetwork pods), while the kernel's own uevents reach every network namespace owned by
the initial user namespace, so also a pod's own. The scan reads sysfs where udev's database is missing."""


class Monitor:
    """Calls on_change once per burst of USB add/remove events, debounce seconds after its first event.

    A plug-in produces a burst (the device, then its interfaces, on each source that sees it); one rescan
    per burst is enough.
    """

    def __init__(
        self,
        context: pyudev.Context,
        on_change: Callable[[], None],
        debounce: float,
    ) -> None:
        self._monitors: dict[str, pyudev.Monitor] = {}
        for source in SOURCES:
            monitor = pyudev.Monitor.from_netlink(context, source=source)
            monitor.filter_by("usb")
            self._monitors[source] = monitor
        self._on_change = on_change
        self._debounce = debounce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udev-monitor", daemon=True)

    def start(self) -> None:
        for monitor in self._monitors.values():
            monitor.start()
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
            ready, _, _ = select.select(list(self._monitors.values()), [], [], timeout)
            for source, monitor in self._monitors.items():
                if monitor in ready and self._drain(source, monitor) and pending_since is None:
                    pending_since = time.monotonic()
            if pending_since is not None and time.monotonic() >= pending_since + self._debounce:
                pending_since = None
                self._on_change()

    def _drain(self, source: str, monitor: pyudev.Monitor) -> bool:
        """Read every queued event of monitor; True when one was an add or a remove."""
        changed = False
        while (device := monitor.poll(timeout=0)) is not None:
            if device.action in ("add", "remove"):
                metrics.UDEV_EVENTS.labels(action=device.action, source=source).inc()
                extra = {"action": device.action, "source": source, "sys_path": device.sys_path}
                log.debug("udev_event", extra=extra)
                changed = True
        return changed
