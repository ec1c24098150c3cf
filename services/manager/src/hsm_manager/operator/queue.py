"""The sync queue: keys deduplicated while they wait, never worked on by two threads at once."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from . import metrics

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, HSMSecret name)."""


class SyncQueue:
    """FIFO of keys with a fixed pool of worker threads.

    A key put while it waits is not added twice; a key put while a worker holds it is run once more
    afterwards, so no trigger is lost and no two syncs of one HSMSecret overlap.
    """

    def __init__(self, work: Callable[[Key, bool], None], workers: int) -> None:
        self._work = work
        # Guards every field below; _ready is signalled when a key becomes runnable.
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._order: collections.deque[Key] = collections.deque()
        self._waiting: set[Key] = set()
        self._running: set[Key] = set()
        self._again: set[Key] = set()
        self._verify: set[Key] = set()
        """Keys whose next run must read the API server rather than the watches (see watched)."""
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"sync-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def put(self, key: Key, verify: bool = False) -> None:
        """Ask for a sync pass of key; verify: one that reads the API server (the work's second argument)."""
        with self._lock:
            if verify:
                self._verify.add(key)
            if key in self._running:
                self._again.add(key)
            elif key not in self._waiting:
                self._waiting.add(key)
                self._order.append(key)
                self._ready.notify()
            metrics.QUEUE_BACKLOG.set(len(self._waiting) + len(self._again))

    def backlog(self) -> int:
        """Keys waiting or due to run again."""
        with self._lock:
            return len(self._waiting) + len(self._again) + len(self._running)

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopped = True
            self._ready.notify_all()
        for thread in self._threads:
            if thread.is_alive():  # stop may come before start, when start-up failed
                thread.join(timeout)

    def _take(self) -> tuple[Key, bool] | None:
        with self._lock:
            while True:
                if self._stopped:
                    return None
                if self._order:
                    # A key in _order never runs: put holds back a running key in _again, and _done
                    # moves it to _order only once it stopped running.
                    key = self._order.popleft()
                    self._waiting.discard(key)
                    self._running.add(key)
                    metrics.QUEUE_BACKLOG.set(len(self._waiting) + len(self._again))
                    verify = key in self._verify
                    self._verify.discard(key)
                    return key, verify
                self._ready.wait(timeout=1.0)

    def _done(self, key: Key) -> None:
        with self._lock:
            self._running.discard(key)
            if key in self._again:
                self._again.discard(key)
                if key not in self._waiting:
                    self._waiting.add(key)
                    self._order.append(key)
                self._ready.notify()

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            key, verify = taken
            try:
                self._work(key, verify)
            except Exception:
                log.exception("sync pass failed", extra={"namespace": key[0], "hsmsecret": key[1]})
            finally:
                self._done(key)
