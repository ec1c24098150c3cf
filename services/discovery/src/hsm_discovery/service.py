"""The reporting loop: rescan, rebuild the report, offer it to the reporter; woken by hotplug and watches."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable

from hsm_common import report

from . import compose, errors, inventory, metrics, reporter, sources, targets, usb
from .plugin import supervisor

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    node_name: str
    """Name of this node, written into the report."""
    rescan_interval: float
    """Seconds between full rescans, the backstop for missed udev events."""
    forget_after: datetime.timedelta
    """How long a removed device stays in the report as unavailable."""
    ccid_allowlist: frozenset[tuple[str, str]]
    """USB IDs libccid supports, for autoDiscovery."""
    hsm_device: str = ""
    """The one HSMDevice to report on and serve a device plugin for (the DaemonSet's own); empty: all of
    them. Two pods serving one HSMDevice's plugin on a node would take its socket from each other."""


class Service:
    """Owns the inventory; only the thread in run (or a caller of step) touches it."""

    def __init__(
        self,
        settings: Settings,
        scanner: Callable[[], list[usb.UsbDevice]],
        source: sources.Source,
        writer: reporter.Reporter,
        wake: threading.Event,
        plugins: supervisor.Supervisor | None = None,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        """wake is the event hotplug, the HSMDevice watch and the device plugins set to ask for an immediate
        step; plugins, when given, get every report's devices and add their statuses to it."""
        self._settings = settings
        self._scanner = scanner
        self._source = source
        self._reporter = writer
        self._plugins = plugins
        self._clock = clock
        self._inventory = inventory.Inventory()
        self._wake = wake
        self._last_step = time.monotonic()

    def wake(self) -> None:
        """Ask for a rescan and report as soon as possible (thread-safe)."""
        self._wake.set()

    def live(self) -> bool:
        """Whether the loop has stepped recently enough (it steps at least every rescan interval)."""
        return time.monotonic() - self._last_step < 3 * self._settings.rescan_interval + 10

    def ready(self) -> bool:
        return self._reporter.written and self._source.healthy()

    def step(self) -> report.DeviceReport | None:
        """Rescan, rebuild and offer the report; None while the HSMDevices are not known yet."""
        self._last_step = time.monotonic()
        now = self._clock()
        try:
            scanned = self._scanner()
        except OSError as err:
            metrics.SCAN_ERRORS.inc()
            log.warning("scan_failed", extra={"error": str(err)})
        else:
            metrics.SCANS.inc()
            self._inventory = inventory.update(self._inventory, scanned, now, self._settings.forget_after)
        snapshot = self._source.snapshot()
        if snapshot is None:
            return None
        chosen = targets.for_node(snapshot.objects, snapshot.node_labels, self._settings.hsm_device)
        rep = compose.build(
            self._settings.node_name, now, chosen, self._inventory, self._settings.ccid_allowlist
        )
        metrics.set_devices_found(
            {name: sum(d.available for d in e.devices) for name, e in rep.devices.items()}
        )
        if self._plugins is not None:
            rep = compose.with_plugins(rep, self._plugins.offer(rep))
        self._reporter.offer(rep)
        return rep

    def run(self, stop: threading.Event) -> None:
        """Step until stop is set: on wake-ups, at the rescan interval and when the reporter is due."""
        next_rescan = 0.0
        while not stop.is_set():
            rep = None
            try:
                rep = self.step()
            except errors.ConfigError as err:
                log.error("step_failed", extra={"error": str(err)})
            now = time.monotonic()
            if now >= next_rescan:
                next_rescan = now + self._settings.rescan_interval
            # Without HSMDevices yet there is nothing to report: the source wakes the loop when it has them.
            due = self._reporter.next_due() if rep is not None else next_rescan
            deadline = min(next_rescan, max(due, now + 0.05))
            self._wake.wait(timeout=max(0.0, deadline - now))
            self._wake.clear()
