"""The background collector: superseded objects are destroyed off the write path, once writes pause.

SoftHSM2's file store destroys an object in time proportional to the objects on the token (it re-reads
its directory: 0.7 ms at 100 objects, 84 ms at 10,000), while a create stays near 0.3 ms. So a write only
creates its new generation and hands the old one's objects here; they are destroyed one at a time on the
collector's thread after no write has begun for ``idle`` seconds. Every PKCS#11 call shares one lock, so a
write that arrives meanwhile waits for at most one destroy.

Garbage is safe to leave on the token: readers rank generations, and every scan (start-up included)
destroys whatever a higher-ranked generation superseded. A crash with garbage pending therefore leaves
exactly what a crash between create and destroy always left.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable

from hsm_agent import errors, metrics

from . import token

log = logging.getLogger(__name__)

#: Errors that mean the token (or the login) went away: the store reconnects, and the reconnect's full
#: scan collects what was pending, so they are passed on rather than counted as a failed destroy.
_LOST = (errors.DeviceUnavailable, errors.NotLoggedIn)


class Collector:
    """A queue of superseded objects and the thread that destroys them while writes are idle.

    The queue is only changed under the store's write lock (the store calls add, collect_one and clear
    holding it, and step runs under it), so a count read under that lock is exact.
    """

    def __init__(
        self,
        destroy: Callable[[token.Handle], None],
        step: Callable[[], None],
        meters: metrics.Metrics,
        idle: float,
        retry: float,
    ) -> None:
        self._destroy = destroy
        self._step = step
        self._metrics = meters
        self._idle = idle
        self._retry = retry
        self._queue: collections.deque[token.Handle] = collections.deque()
        self._last_write = time.monotonic()
        # Wakes the thread when garbage arrives or the store stops (guards nothing else).
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Superseded objects still on the token."""
        return len(self._queue)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="store-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; what is still pending stays for the next start-up scan."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def touch(self) -> None:
        """A write began or ended: postpone background destroys until writes have been idle again."""
        self._last_write = time.monotonic()

    def quiet(self) -> bool:
        """True once no write has begun or ended for the idle time."""
        return time.monotonic() - self._last_write >= self._idle

    def add(self, handles: Iterable[token.Handle]) -> None:
        """Queue superseded objects (the caller holds the store's write lock)."""
        self._queue.extend(handles)
        self._metrics.garbage_pending.set(len(self._queue))
        with self._changed:
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget the queue: a scan destroyed its objects, or a lost session voided their handles."""
        self._queue.clear()
        self._metrics.garbage_pending.set(0)

    def collect_one(self) -> bool:
        """Destroy the oldest pending object now (the caller holds the write lock); False when none is left.

        A destroy that fails for another reason than a lost token leaves the object for the next scan.
        """
        if not self._queue:
            return False
        handle = self._queue.popleft()
        self._metrics.garbage_pending.set(len(self._queue))
        try:
            self._destroy(handle)
        except _LOST:
            self._queue.appendleft(handle)
            self._metrics.garbage_pending.set(len(self._queue))
            raise
        except errors.AgentError as error:
            self._metrics.garbage_collected.labels("failed").inc()
            log.warning(
                "superseded object left for the next scan",
                extra={"error": str(error), "error_type": type(error).__name__},
            )
            return True
        self._metrics.garbage_collected.labels("ok").inc()
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and not self._queue:
                    self._changed.wait()
                if self._stopping:
                    return
                remaining = self._idle - (time.monotonic() - self._last_write)
                if remaining > 0:
                    self._changed.wait(remaining)
                    continue
            try:
                self._step()
            except errors.AgentError as error:
                self._metrics.garbage_collected.labels("failed").inc()
                log.warning(
                    "background collection failed",
                    extra={"error": str(error), "error_type": type(error).__name__},
                )
                self._pause()
            except Exception:
                self._metrics.garbage_collected.labels("failed").inc()
                log.exception("background collection crashed")
                self._pause()

    def _pause(self) -> None:
        with self._changed:
            if not self._stopping:
                self._changed.wait(self._retry)
