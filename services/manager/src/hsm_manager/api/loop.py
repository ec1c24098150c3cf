"""The periodic mirror repair, run by exactly one gunicorn worker at a time.

Workers compete for an exclusive flock on a file; the holder repairs every group each interval. If it
dies, the kernel drops the lock and another worker takes over on its next try.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading

from . import agents, repair

log = logging.getLogger(__name__)


class MirrorLoop:
    """A daemon thread repairing every device group each interval while this process holds the lock."""

    def __init__(self, provider: agents.Provider, interval: float, lock_path: str) -> None:
        self._provider = provider
        self._interval = interval
        self._lock_path = lock_path
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock_fd: int | None = None
        self._thread = threading.Thread(target=self._run, name="mirror-loop", daemon=True)

    def start(self) -> None:
        """Start the thread (once, in the worker process)."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and release the lock."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _leader(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        log.info("mirror_loop_leader", extra={"pid": os.getpid()})
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set() or not self._leader():
                continue
            for device in self._provider.devices():
                try:
                    repair.repair_group(self._provider, self._provider.group(device))
                except Exception:  # a failed pass must not end the loop
                    log.exception("mirror_loop_failed", extra={"device": device})
        if self._lock_fd is not None:
            os.close(self._lock_fd)
