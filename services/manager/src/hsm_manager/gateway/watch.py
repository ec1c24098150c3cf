"""One watch stream per agent, reconnected with backoff, each event handed to a callback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsm_manager.decide import model

from . import client, endpoints, errors

log = logging.getLogger(__name__)

Callback = Callable[[endpoints.AgentEndpoint, model.Event], None]
StateCallback = Callable[[endpoints.AgentEndpoint, bool], None]
"""(endpoint, connected) on every connect and disconnect."""

BACKOFF_START = 0.2
BACKOFF_MAX = 5.0


class _Stream(threading.Thread):
    def __init__(
        self,
        endpoint: endpoints.AgentEndpoint,
        directory: endpoints.Directory,
        on_event: Callback,
        on_state: StateCallback,
    ) -> None:
        super().__init__(name=f"watch-{endpoint.name}", daemon=True)
        self.endpoint = endpoint
        self._directory = directory
        self._on_event = on_event
        self._on_state = on_state
        self._stop = threading.Event()
        # Guards _watch: stop() cancels it from another thread.
        self._lock = threading.Lock()
        self._watch: client.Watch | None = None

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._watch is not None:
                self._watch.cancel()

    def run(self) -> None:
        backoff = BACKOFF_START
        refused = ""  # the last refusal of the agent's certificate logged: said again only when it changes
        while not self._stop.is_set():
            connected = False
            try:
                stream = self._directory.client(self.endpoint).watch()
                with self._lock:
                    self._watch = stream
                if self._stop.is_set():
                    stream.cancel()
                for event in stream:
                    if not connected:
                        connected, backoff, refused = True, BACKOFF_START, ""
                        self._on_state(self.endpoint, True)
                    self._on_event(self.endpoint, event)
            except errors.Untrusted as error:
                # The stream retries every few seconds until the kubelet brings the agent a good leaf.
                if not self._stop.is_set() and error.message != refused:
                    refused = error.message
                    log.warning(
                        "agent certificate refused", extra={"agent": self.endpoint.name, "reason": refused}
                    )
            except errors.AgentCallError as error:
                if not self._stop.is_set():
                    log.info(
                        "watch stream ended",
                        extra={"agent": self.endpoint.name, "error_type": type(error).__name__},
                    )
            except Exception:
                log.exception("watch callback failed", extra={"agent": self.endpoint.name})
            if connected:
                self._on_state(self.endpoint, False)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)


class Watches:
    """The set of running streams, reconciled against the agents that exist."""

    def __init__(self, directory: endpoints.Directory, on_event: Callback, on_state: StateCallback) -> None:
        self._directory = directory
        self._on_event = on_event
        self._on_state = on_state
        # Guards _streams: reconcile runs from a kopf timer thread, stop_all from the shutdown path.
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], _Stream] = {}

    def reconcile(self, found: list[endpoints.AgentEndpoint]) -> None:
        """Start a stream for every new or moved endpoint, stop the streams of the others."""
        wanted = {(e.namespace, e.name): e for e in found}
        with self._lock:
            for key, stream in list(self._streams.items()):
                if wanted.get(key) != stream.endpoint:
                    stream.stop()
                    del self._streams[key]
            for key, endpoint in wanted.items():
                if key not in self._streams:
                    stream = _Stream(endpoint, self._directory, self._on_event, self._on_state)
                    self._streams[key] = stream
                    stream.start()

    def connected(self) -> int:
        """Streams running (not necessarily connected right now)."""
        with self._lock:
            return len(self._streams)

    def stop_all(self) -> None:
        """Stop every stream."""
        self.reconcile([])
