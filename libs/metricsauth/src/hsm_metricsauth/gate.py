"""Who may read /metrics: a request's bearer token reviewed once, its verdict then reused for a while.

A Prometheus scrape every 15 s would otherwise cost two API requests each time. Verdicts are kept by the
SHA-256 of the token (the token itself is never stored): an allowed one for a minute, a refused one for
ten seconds (a freshly granted reader gets in soon), and no more than a bounded number of them (a flood
of made-up tokens cannot grow memory). A revoked token or binding therefore stops working within a minute.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .reviews import Verdict

ALLOWED_SECONDS = 60.0
DENIED_SECONDS = 10.0
MAX_ENTRIES = 1024


class Reviewer(Protocol):
    def review(self, token: str) -> Verdict:
        """What token may do; reviews.Unavailable when that cannot be told now."""


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; empty for anything else."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Gate:
    """Verdicts of tokens, reviewed by reviewer and cached; one Gate per metrics endpoint."""

    def __init__(
        self,
        reviewer: Reviewer,
        clock: Callable[[], float] = time.monotonic,
        allowed_seconds: float = ALLOWED_SECONDS,
        denied_seconds: float = DENIED_SECONDS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._reviewer = reviewer
        self._clock = clock
        self._ttl = {Verdict.ALLOWED: allowed_seconds}
        self._denied_seconds = denied_seconds
        self._max = max_entries
        # The server's handler threads share the cache.
        self._lock = threading.Lock()
        self._verdicts: dict[bytes, tuple[float, Verdict]] = {}

    def check(self, authorization: str | None) -> Verdict:
        """The verdict on a request's Authorization header; reviews.Unavailable when the API server
        cannot be asked (nothing is cached then, so the next scrape asks again)."""
        token = bearer_token(authorization)
        if not token:
            return Verdict.UNAUTHENTICATED
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        with self._lock:
            found = self._verdicts.get(key)
            if found is not None and found[0] > now:
                return found[1]
        # Reviewed outside the lock: a slow API server must not hold up scrapers whose verdicts are cached.
        verdict = self._reviewer.review(token)
        self._remember(key, verdict, now + self._ttl.get(verdict, self._denied_seconds))
        return verdict

    def _remember(self, key: bytes, verdict: Verdict, until: float) -> None:
        with self._lock:
            self._verdicts.pop(key, None)
            if len(self._verdicts) >= self._max:
                now = self._clock()
                for stale in [k for k, (expiry, _) in self._verdicts.items() if expiry <= now]:
                    del self._verdicts[stale]
            while len(self._verdicts) >= self._max:
                # Insertion order: the oldest verdict goes first.
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[key] = (until, verdict)
