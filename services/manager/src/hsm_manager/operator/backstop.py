"""The syncInterval backstop: one thread keeps every HSMSecret's next drift check and queues it when due.

One thread rather than a kopf timer per HSMSecret: a thousand timers are a thousand asyncio tasks, each
run through kopf's handler machinery every few seconds, which costs more CPU and memory than the syncs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

Key = tuple[str, str]
"""(namespace, HSMSecret name)."""


class Backstop:
    """Deadlines per key; ``put`` is called for each key whose interval has passed since its last check."""

    def __init__(self, put: Callable[[Key], None], tick: float = 1.0) -> None:
        self._put = put
        self._tick = tick
        # Guards _due: kopf handler threads track and forget keys, the backstop thread reads them.
        self._lock = threading.Lock()
        self._due: dict[Key, tuple[float, float]] = {}
        """key → (next check, interval), monotonic seconds."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="backstop", daemon=True)

    def track(self, key: Key, interval: float) -> None:
        """Check key every interval seconds; a new key's first check is jittered over one interval.

        The jitter spreads the checks of a restart with thousands of HSMSecrets instead of stampeding the
        agents; a known key keeps its next check and only takes the new interval after it.
        """
        interval = max(interval, 1.0)
        with self._lock:
            current = self._due.get(key)
            first = current[0] if current else time.monotonic() + random.uniform(0, interval)
            self._due[key] = (first, interval)

    def forget(self, key: Key) -> None:
        with self._lock:
            self._due.pop(key, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._due)

    def due_now(self, now: float) -> list[Key]:
        """Keys due at now, each rescheduled one interval later."""
        due: list[Key] = []
        with self._lock:
            for key, (when, interval) in self._due.items():
                if now >= when:
                    due.append(key)
                    self._due[key] = (now + interval, interval)
        return due

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            for key in self.due_now(time.monotonic()):
                self._put(key)
