"""The periodic mirror repair: one thread brings every device of every known HSMDevice to the newest copies.

It runs in the operator, not in the API: the operator has exactly one active instance (one replica,
Recreate, standalone kopf), so repairs never race another repairer and need no lock, while the API runs
many gunicorn workers. The API still repairs on demand (POST /hsm/mirror/sync) through the same service.
"""

from __future__ import annotations

import logging
import threading

from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import errors as mirror_errors
from hsm_manager.mirroring import repair, service

from . import devices, metrics

log = logging.getLogger(__name__)


def _observe(kind: str, ok: bool) -> None:
    metrics.MIRROR_REPAIRS.labels(kind, "ok" if ok else "error").inc()


class MirrorLoop:
    """Repairs every known HSMDevice once per interval, in one daemon thread (none when interval <= 0)."""

    def __init__(self, directory: endpoints.Directory, known: devices.Devices, interval: float) -> None:
        self._directory = directory
        self._known = known
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mirror-loop", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def repair_all(self) -> list[repair.Report]:
        """One repair pass of every known HSMDevice with agents; one failing does not stop the rest."""
        reports: list[repair.Report] = []
        for namespace, device in self._known.all():
            try:
                reports.append(service.Mirror(self._directory, namespace).repair(device, observe=_observe))
            except mirror_errors.DeviceNotFound:
                continue  # no Ready agent yet: nothing to bring in line
            except Exception:  # a failed pass must not end the loop
                log.exception("mirror_loop_failed", extra={"namespace": namespace, "device": device})
        return reports

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.repair_all()
