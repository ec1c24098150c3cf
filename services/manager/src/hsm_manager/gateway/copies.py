"""Copies of one agent's answers (secrets, states and list pages), kept while the agent follows them for us
(its Follow call).

The agent tells us of every change to a path we read under our name (or under a prefix we listed a page
of), and a write there returns only once we have dropped our copy (docs/architecture.md, "Copies of reads
in the API"). So a copy is served only
while all of these hold: the Follow stream that named us is up, our lease has not run out (counted from
when we asked for the renewal), and the read that made the copy began after the last change notice and
under the name the stream still has. Anything else drops every copy.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import grpc

from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

from . import errors

Observer = Callable[[str, str, float], None]
"""As client.Observer: told of every Follow stream as it ends (method, outcome, seconds)."""

log = logging.getLogger(__name__)

#: Seconds between two attempts to follow an agent that refused or dropped the stream (doubling to the cap).
RETRY_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
#: The lease assumed until the agent grants one (only paces the first renewals).
FIRST_LEASE_SECONDS = 2.0
#: What is kept of a path: the secret read, and its state (version and checksum). Of a prefix: list pages.
SECRET, STATE, PAGE = "secret", "state", "page"


@dataclasses.dataclass(frozen=True)
class Ticket:
    """What a read that may be kept began under."""

    epoch: int
    reader: str


class Copies:
    """One worker's copies of one agent's answers (at most budget bytes of values), by kind and path."""

    def __init__(
        self, agent: str, stub: hsm_pb2_grpc.HSMAgentStub, budget: int, observe: Observer | None = None
    ) -> None:
        self._agent = agent
        self._stub = stub
        self._budget = budget
        self._observe = observe
        # Guards everything below: API threads read and keep, the follow thread drops and renews.
        self._lock = threading.Lock()
        # (kind, path or prefix) → variant (a list page's parameters; None for the others) → (value, size),
        # the oldest first.
        self._kept: dict[tuple[str, str], dict[Hashable, tuple[object, int]]] = {}
        self._bytes = 0
        self._reader = ""
        self._valid_until = 0.0
        # Grows with every change notice and every end of a stream: a read begun at another epoch is not kept.
        self._epoch = 0
        self._started = False
        self._closed = threading.Event()
        self._call: Any = None

    def get(self, kind: str, path: str, variant: Hashable = None) -> Any:
        """The copy of (kind, path, variant), or None when there is none to serve."""
        with self._lock:
            if time.monotonic() >= self._valid_until:
                return None
            group = self._kept.get((kind, path))
            found = None if group is None else group.get(variant)
        return None if found is None else found[0]

    def begin(self) -> Ticket:
        """What a read must carry to be followed; the first one starts following the agent."""
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._follow, name=f"follow-{self._agent}", daemon=True).start()
            return Ticket(self._epoch, self._reader)

    def keep(
        self, ticket: Ticket, kind: str, path: str, value: object, size: int, variant: Hashable = None
    ) -> None:
        """Keep value as the copy of (kind, path, variant) if nothing changed since ticket was taken."""
        with self._lock:
            if ticket.epoch != self._epoch or not ticket.reader or ticket.reader != self._reader:
                return
            if size > self._budget:
                return
            # Taken out while room is made, and put back as the newest.
            group = self._kept.pop((kind, path), {})
            old = group.pop(variant, None)
            if old is not None:
                self._bytes -= old[1]
            while self._bytes + size > self._budget:
                if self._kept:
                    self._drop(next(iter(self._kept)))
                else:
                    self._bytes -= group.popitem()[1][1]
            group[variant] = (value, size)
            self._bytes += size
            self._kept[(kind, path)] = group

    def _drop(self, key: tuple[str, str]) -> None:
        group = self._kept.pop(key, None)
        if group is not None:
            self._bytes -= sum(size for _, size in group.values())

    def close(self) -> None:
        """Stop following and drop every copy (the channel is being closed)."""
        self._closed.set()
        call = self._call
        if call is not None:
            call.cancel()
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self._kept.clear()
        self._bytes = 0
        self._reader = ""
        self._valid_until = 0.0
        self._epoch += 1

    def _follow(self) -> None:
        retry = RETRY_SECONDS
        while not self._closed.is_set():
            began = time.monotonic()
            outcome = "OK"
            try:
                self._stream()
            except grpc.RpcError as error:
                outcome = errors.code_name(error)
                if not self._closed.is_set():
                    log.warning(
                        "agent_follow_ended",
                        extra={"agent": self._agent, "code": outcome, "retry_seconds": retry},
                    )
            finally:
                with self._lock:
                    self._forget()
            if self._observe is not None:
                self._observe("Follow", outcome, time.monotonic() - began)
            # A stream that lasted starts the retries over; one refused at once backs off.
            retry = (
                RETRY_SECONDS
                if time.monotonic() - began > RETRY_CAP_SECONDS
                else min(retry * 2, RETRY_CAP_SECONDS)
            )
            self._closed.wait(retry)

    def _stream(self) -> None:
        acks: queue.Queue[int | None] = queue.Queue()
        renewals: dict[int, float] = {}
        lease = [FIRST_LEASE_SECONDS]
        call = self._stub.Follow(self._requests(acks, renewals, lease))
        self._call = call
        try:
            if self._closed.is_set():
                return
            for event in call:
                if event.reader:
                    with self._lock:
                        self._reader = event.reader
                if event.renewed:
                    sent = renewals.pop(event.renewed, None)
                    lease[0] = event.lease_seconds
                    if sent is not None:
                        with self._lock:
                            self._valid_until = max(self._valid_until, sent + event.lease_seconds)
                if event.seq:
                    with self._lock:
                        for path in event.paths:
                            self._drop((SECRET, path))
                            self._drop((STATE, path))
                        for prefix in event.prefixes:
                            self._drop((PAGE, prefix))
                        self._epoch += 1
                    acks.put(event.seq)
        finally:
            acks.put(None)
            call.cancel()

    @staticmethod
    def _requests(
        acks: queue.Queue[int | None], renewals: dict[int, float], lease: list[float]
    ) -> Iterator[hsm_pb2.FollowRequest]:
        """Acknowledgements as they come, and a renewal every third of the lease (gRPC's thread runs it)."""
        number = 0
        due = 0.0
        while True:
            wait = due - time.monotonic()
            if wait <= 0:
                number += 1
                # Taken before the request leaves: the agent's end of the lease is later than ours.
                renewals[number] = time.monotonic()
                due = renewals[number] + lease[0] / 3
                yield hsm_pb2.FollowRequest(renew=number)
                continue
            try:
                ack = acks.get(timeout=wait)
            except queue.Empty:
                continue
            if ack is None:
                return
            yield hsm_pb2.FollowRequest(ack=ack)
