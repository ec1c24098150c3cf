"""Readers that keep copies of what they read (the REST API's workers), and the wait that keeps them right.

A reader opens a Follow stream and names itself in its reads; each path read that way is followed for it.
When a followed path changes, the reader is sent a notice and drops its copy. A write returns only once
every notice sent before it returned has been acknowledged, so a read that starts after a write returned
never sees the value the write replaced, whichever API worker serves it.

A reader that does not acknowledge in time is cut off, and the write waits out its lease: the reader
serves copies only within the lease, which it counts from when it asked for the renewal (before the agent
granted it), so once the agent's end of the lease has passed, the reader's has too. A reader cut off, or
whose stream ended, is held to its lease in the same way for the paths it followed.

A reader learns that the agent is gone when its stream breaks: a killed process's connections are closed
by the kernel, and a replacement on the same token takes longer than a lease to start serving writes.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable

from hsm_agent import errors

log = logging.getLogger(__name__)

#: How long a renewal lets a reader serve its copies (seconds); readers renew every third of it.
LEASE_SECONDS = 2.0
#: How long a write waits for a reader to acknowledge a notice before cutting it off (seconds).
ACK_SECONDS = 1.0
#: The most readers one agent follows: each holds a server thread for its stream.
MAX_READERS = 32


@dataclasses.dataclass(frozen=True)
class Grant:
    """Renewal number renewed is granted for lease seconds."""

    renewed: int
    lease: float


@dataclasses.dataclass(frozen=True)
class Notice:
    """The paths changed, and something under the prefixes; the reader acknowledges seq once it has
    dropped what it kept of them."""

    seq: int
    paths: tuple[str, ...]
    prefixes: tuple[str, ...] = ()


class Reader:
    """One reader's stream: what it follows, what it has been told and has acknowledged, its lease."""

    def __init__(self, name: str) -> None:
        self.name = name
        #: What the stream sends, in order; None ends it.
        self.outbox: queue.Queue[Grant | Notice | None] = queue.Queue()
        self.paths: set[str] = set()
        self.prefixes: set[str] = set()
        self.sent = 0
        self.acked = 0
        #: When its lease ends on the agent's clock.
        self.expires = 0.0
        self.cut = False


class Readers:
    """Every reader of one agent and the paths each follows; the index tells it of every change."""

    def __init__(
        self,
        lease: float = LEASE_SECONDS,
        ack_timeout: float = ACK_SECONDS,
        limit: int = MAX_READERS,
        cut_off: Callable[[], None] | None = None,
    ) -> None:
        self.lease = lease
        self.ack_timeout = ack_timeout
        self._limit = limit
        self._counted_cut_off = cut_off
        # Guards everything below; index changes arrive from the writer and rescan threads, acknowledgements
        # from the streams, follows from the read calls.
        self._lock = threading.Lock()
        self._acknowledged = threading.Condition(self._lock)
        self._readers: dict[str, Reader] = {}
        self._followers: dict[str, set[Reader]] = {}
        self._prefix_followers: dict[str, set[Reader]] = {}
        # Readers cut off or gone whose leases may still run, and what each followed.
        self._gone: list[Reader] = []
        # A write settles no earlier than this: a reader that is gone may still serve a copy until then.
        self._hold_until = 0.0

    def open(self) -> Reader:
        with self._lock:
            self._forget_gone()
            if len(self._readers) >= self._limit:
                raise errors.TooManyReaders(f"this agent already follows {self._limit} readers")
            reader = Reader(secrets.token_hex(16))
            self._readers[reader.name] = reader
            return reader

    def __len__(self) -> int:
        with self._lock:
            return len(self._readers)

    def renew(self, reader: Reader, number: int) -> None:
        """Grant renewal number (a reader that was cut off gets no more grants)."""
        with self._lock:
            if reader.cut:
                return
            reader.expires = time.monotonic() + self.lease
            reader.outbox.put(Grant(number, self.lease))

    def acknowledge(self, reader: Reader, seq: int) -> None:
        with self._acknowledged:
            if seq > reader.acked:
                reader.acked = min(seq, reader.sent)
                self._acknowledged.notify_all()

    def follow(self, name: str, path: str, *, prefix: bool = False) -> bool:
        """Follow path (with prefix, every path under it: a listing kept) for the reader called name; False
        when no such reader is open here."""
        with self._lock:
            reader = self._readers.get(name)
            if reader is None:
                return False
            (reader.prefixes if prefix else reader.paths).add(path)
            (self._prefix_followers if prefix else self._followers).setdefault(path, set()).add(reader)
            return True

    def changed(self, path: str) -> None:
        """Tell every reader following path, or a prefix of it, that it changed (called by the index as
        it changes)."""
        with self._lock:
            told: dict[Reader, tuple[list[str], list[str]]] = {}
            for reader in self._followers.pop(path, ()):
                reader.paths.discard(path)
                told.setdefault(reader, ([], []))[0].append(path)
            for prefix in [p for p in self._prefix_followers if path.startswith(p)]:
                for reader in self._prefix_followers.pop(prefix):
                    reader.prefixes.discard(prefix)
                    told.setdefault(reader, ([], []))[1].append(prefix)
            for reader, (paths, prefixes) in told.items():
                if reader.cut:
                    self._hold_until = max(self._hold_until, reader.expires)
                    continue
                reader.sent += 1
                reader.outbox.put(Notice(reader.sent, tuple(paths), tuple(prefixes)))

    def close(self, reader: Reader) -> None:
        """The reader's stream ended: it is held to its lease for the paths it followed."""
        with self._lock:
            if not reader.cut:
                self._cut(reader)

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        with self._lock:
            for reader in list(self._readers.values()):
                self._cut(reader)

    def settle(self) -> None:
        """Return once no reader can serve a copy older than the changes made so far."""
        with self._acknowledged:
            now = time.monotonic()
            # A reader whose lease has run out no longer serves copies: nothing to wait for.
            wanted = [
                (reader, reader.sent)
                for reader in self._readers.values()
                if reader.acked < reader.sent and reader.expires > now
            ]
            deadline = now + self.ack_timeout
            while waiting := [r for r, seq in wanted if not r.cut and r.acked < seq]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    for reader in waiting:
                        log.warning("reader_cut_off", extra={"reader": reader.name[:8]})
                        if self._counted_cut_off is not None:
                            self._counted_cut_off()
                        self._cut(reader)
                        self._hold_until = max(self._hold_until, reader.expires)
                    break
                self._acknowledged.wait(remaining)
            hold = self._hold_until - time.monotonic()
            self._forget_gone()
        if hold > 0:
            time.sleep(hold)

    def _cut(self, reader: Reader) -> None:
        reader.cut = True
        self._readers.pop(reader.name, None)
        reader.outbox.put(None)
        if reader.acked < reader.sent:
            # It may still serve what it was told to drop.
            self._hold_until = max(self._hold_until, reader.expires)
        if reader.paths or reader.prefixes:
            self._gone.append(reader)
        # A write waiting for this reader's acknowledgement need wait no longer for it.
        self._acknowledged.notify_all()

    def _forget_gone(self) -> None:
        """Stop following for readers whose leases have run out."""
        now = time.monotonic()
        for reader in [r for r in self._gone if r.expires <= now]:
            self._gone.remove(reader)
            for table, keys in ((self._followers, reader.paths), (self._prefix_followers, reader.prefixes)):
                for key in keys:
                    followers = table.get(key)
                    if followers is not None:
                        followers.discard(reader)
                        if not followers:
                            del table[key]
                keys.clear()
