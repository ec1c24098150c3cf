"""The pods and kwok nodes the runner acts on, kept current by a list-and-watch thread."""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from devcluster import nodes

log = logging.getLogger("devcluster.podrunner")

_NODE_REFRESH = 5.0


class Api(Protocol):
    """The calls the runner makes (``kubeapi.Client`` in production, a fake in unit tests)."""

    def get(self, path: str) -> dict[str, Any]: ...

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> dict[str, Any]: ...

    def watch(self, path: str, timeout_seconds: int = 300) -> Iterator[dict[str, Any]]: ...


class PodCache:
    """All pods by UID; a daemon thread lists, then watches, and lists again whenever a watch ends."""

    def __init__(self, client: Api, stopping: threading.Event) -> None:
        self._client = client
        self._stopping = stopping
        self._pods: dict[str, dict[str, Any]] = {}
        # Guards _pods: the watch thread writes it, the reconcile loop reads it.
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._nodes: set[str] = set()
        self._nodes_checked = -_NODE_REFRESH

    def start(self) -> None:
        """Start the watch thread."""
        threading.Thread(target=self._watch, name="pod-watch", daemon=True).start()

    def wait_synced(self, timeout: float) -> bool:
        """Whether the first full list arrived within ``timeout`` seconds."""
        return self._synced.wait(timeout)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of the current pods by UID."""
        with self._lock:
            return dict(self._pods)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                listing = self._client.get("/api/v1/pods")
                with self._lock:
                    self._pods = {p["metadata"]["uid"]: p for p in listing["items"]}
                self._synced.set()
                version = listing["metadata"]["resourceVersion"]
                for event in self._client.watch(
                    f"/api/v1/pods?resourceVersion={version}", timeout_seconds=120
                ):
                    if self._stopping.is_set():
                        return
                    if event["type"] == "ERROR":
                        break
                    if event["type"] == "BOOKMARK":
                        continue
                    obj = event["object"]
                    uid = obj["metadata"]["uid"]
                    with self._lock:
                        if event["type"] == "DELETED":
                            self._pods.pop(uid, None)
                        else:
                            self._pods[uid] = obj
            except Exception as err:
                log.warning("event=watch_failed error=%r", err)
                self._stopping.wait(1.0)

    def kwok_nodes(self) -> set[str]:
        """Names of the nodes kwok manages (refreshed every few seconds; called from the reconcile loop)."""
        if time.monotonic() - self._nodes_checked > _NODE_REFRESH:
            try:
                listing = self._client.get("/api/v1/nodes")
                self._nodes = {
                    n["metadata"]["name"]
                    for n in listing["items"]
                    if n["metadata"].get("annotations", {}).get(nodes.KWOK_ANNOTATION)
                    == nodes.KWOK_ANNOTATION_VALUE
                }
                self._nodes_checked = time.monotonic()
            except Exception as err:
                log.warning("event=list_nodes_failed error=%r", err)
        return self._nodes
