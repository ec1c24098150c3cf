"""Where the HSMDevice objects and this node's labels come from: the API server, or a file for local runs."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from . import errors, kube, metrics

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    objects: tuple[dict[str, Any], ...]
    """HSMDevice objects of the namespace as the API server returns them."""
    node_labels: dict[str, str]


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def snapshot(self) -> Snapshot | None:
        """The current objects, or None before the first successful list."""

    def healthy(self) -> bool: ...


class Static:
    """HSMDevice objects from a JSON file (a list, or a List with ``items``) and labels given up front."""

    def __init__(self, path: pathlib.Path, node_labels: dict[str, str]) -> None:
        self._path = path
        self._labels = node_labels

    def start(self) -> None:
        self.snapshot()

    def stop(self) -> None:
        pass

    def healthy(self) -> bool:
        return True

    def snapshot(self) -> Snapshot:
        try:
            loaded = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise errors.ConfigError(f"cannot read HSMDevices from {self._path}: {err}") from err
        items = loaded.get("items", []) if isinstance(loaded, dict) else loaded
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise errors.ConfigError(f"{self._path} holds no list of HSMDevice objects")
        return Snapshot(objects=tuple(items), node_labels=dict(self._labels))


class Watched:
    """HSMDevices of one namespace kept current by list + watch, relisted every resync period.

    A failed call is retried with exponential backoff; until the next successful list the last known
    objects stay in use, so a short API outage does not empty the report.
    """

    def __init__(
        self,
        client: kube.Client,
        namespace: str,
        node_name: str,
        label_selector: str,
        resync: float,
        on_change: Callable[[], None],
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._node = node_name
        self._selector = label_selector
        self._resync = max(1, int(resync))
        self._on_change = on_change
        # Guards _objects/_labels: written by the watch thread, read by the reporting loop.
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] | None = None
        self._labels: dict[str, str] = {}
        self._healthy = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hsmdevice-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def healthy(self) -> bool:
        return self._healthy and self._thread.is_alive()

    def snapshot(self) -> Snapshot | None:
        with self._lock:
            if self._objects is None:
                return None
            return Snapshot(objects=tuple(self._objects.values()), node_labels=dict(self._labels))

    def _replace(self, objects: dict[str, dict[str, Any]], labels: dict[str, str]) -> None:
        with self._lock:
            self._objects = objects
            self._labels = labels
        self._on_change()

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        name = str(obj.get("metadata", {}).get("name", ""))
        with self._lock:
            assert self._objects is not None
            if kind == "DELETED":
                self._objects.pop(name, None)
            else:
                self._objects[name] = obj
        self._on_change()

    def _sync_once(self) -> None:
        """One list followed by a watch that ends at the resync period."""
        labels = self._client.node_labels(self._node)
        items, version = self._client.list_devices(self._namespace, self._selector)
        self._replace({str(i["metadata"]["name"]): i for i in items}, labels)
        self._healthy = True
        for kind, obj in self._client.watch_devices(self._namespace, self._selector, version, self._resync):
            if self._stop.is_set():
                return
            if kind == "BOOKMARK":
                continue
            self._apply(kind, obj)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._sync_once()
                failures = 0
            except errors.WatchExpired:
                log.info("hsmdevice_watch_expired")
            except errors.ApiError as err:
                failures += 1
                self._healthy = False
                metrics.API_ERRORS.inc()
                delay = min(30.0, 0.5 * 2 ** (failures - 1))
                log.warning(
                    "hsmdevice_watch_failed",
                    extra={"error": str(err), "status": err.status, "retry_in": delay},
                )
                self._stop.wait(delay)
