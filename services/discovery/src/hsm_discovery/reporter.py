"""Decides when a report is written: on a content change, at the heartbeat, and again after failures."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from hsm_common import report

from . import compose, errors, metrics, sink

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class Reporter:
    """Writes reports to a sink; the sink is only ever given the latest report, never a queued old one."""

    def __init__(
        self, target: sink.Sink, heartbeat: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sink = target
        self._heartbeat = heartbeat
        self._clock = clock
        self._written_key: str | None = None
        self._written_at: float | None = None
        self._failures = 0
        self._retry_at = 0.0

    @property
    def written(self) -> bool:
        """Whether a report has been written and the last attempt did not fail."""
        return self._written_at is not None and self._failures == 0

    def next_due(self) -> float:
        """The clock time by which offer should be called again (heartbeat or retry)."""
        if self._failures:
            return self._retry_at
        if self._written_at is None:
            return self._clock()
        return self._written_at + self._heartbeat

    def offer(self, rep: report.DeviceReport) -> bool:
        """Write rep if its content differs from the last written one or a heartbeat or retry is due."""
        now = self._clock()
        if self._failures and now < self._retry_at:
            return False
        key = compose.content_key(rep)
        heartbeat_due = self._written_at is None or now >= self._written_at + self._heartbeat
        if key == self._written_key and not heartbeat_due and not self._failures:
            return False
        try:
            self._sink.write(json.dumps(rep.to_wire(), sort_keys=True, separators=(",", ":")))
        except errors.DiscoveryError as err:
            self._failures += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            self._retry_at = now + delay
            metrics.REPORT_FAILURES.inc()
            log.warning(
                "report_failed", extra={"error": str(err), "failures": self._failures, "retry_in": delay}
            )
            return False
        if self._failures:
            log.info("report_recovered", extra={"after_failures": self._failures})
        self._failures = 0
        changed = key != self._written_key
        self._written_key = key
        self._written_at = now
        metrics.REPORT_PATCHES.inc()
        log.info("report_written", extra={"changed": changed, "hsm_devices": len(rep.devices)})
        return True
