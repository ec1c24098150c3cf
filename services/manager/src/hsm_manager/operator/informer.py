"""List, then watch, one collection in one thread, and hand each change to a callback in order.

The operator follows HSMSecrets and its managed Secrets this way rather than through kopf: they come by the
thousand, and kopf's per-event machinery (a worker task per object, causes, handler invocation in an
executor) was 13 % of the operator's CPU during a cold convergence (py-spy). kopf keeps the few HSMDevices
and pods. A relist (when the watch's resourceVersion has expired) reports objects that vanished meanwhile
as DELETED, which a plain watch restart would never say.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsm_manager import kube

log = logging.getLogger(__name__)

Key = tuple[str, str]
OnEvent = Callable[[str, kube.Obj], None]
"""(event type: ADDED, MODIFIED or DELETED; the object)."""

#: Seconds a watch request lasts before it is renewed from the last resourceVersion seen.
WATCH_SECONDS = 300
#: Seconds between attempts while the API server cannot be listed or watched.
RETRY_SECONDS = 2.0


def _key(obj: kube.Obj) -> Key:
    meta = obj["metadata"]
    return str(meta.get("namespace", "")), str(meta["name"])


def _labels(obj: kube.Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


class Informer:
    """Follows kind (Secret or a custom kind, all namespaces, label_selector) for on_event."""

    def __init__(self, client: kube.Kube, kind: str, on_event: OnEvent, label_selector: str = "") -> None:
        self._client = client
        self._kind = kind
        self._on_event = on_event
        self._selector = label_selector
        self._known: dict[Key, dict[str, str]] = {}
        """Every object the last list and the watch since showed, with its labels (a DELETED a relist
        reports names the object's labels too, so its owner can be found)."""
        self._version = ""
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"informer-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does at its next event or when its watch request ends."""
        self._stop.set()

    def wait_synced(self, timeout: float) -> bool:
        """True once the first full list has been handed over."""
        return self._synced.wait(timeout)

    def _relist(self) -> None:
        items, self._version = self._client.list_all(self._kind, self._selector)
        listed = {_key(item): _labels(item) for item in items}
        for key in sorted(set(self._known) - set(listed)):
            meta = {"namespace": key[0], "name": key[1], "labels": self._known[key]}
            self._deliver("DELETED", {"metadata": meta})
        for item in items:
            self._deliver("MODIFIED" if _key(item) in self._known else "ADDED", item)
        self._known = listed
        self._synced.set()

    def _follow(self) -> None:
        for event in self._client.watch(self._kind, self._selector, self._version, WATCH_SECONDS):
            if self._stop.is_set():
                return
            kind, obj = str(event.get("type")), event.get("object") or {}
            self._version = str((obj.get("metadata") or {}).get("resourceVersion") or self._version)
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self._known.pop(_key(obj), None)
            else:
                self._known[_key(obj)] = _labels(obj)
            self._deliver(kind, obj)

    def _deliver(self, kind: str, obj: kube.Obj) -> None:
        try:
            self._on_event(kind, obj)
        except Exception:
            # One object's trouble must not stop the others: the backstop's passes still reach it.
            log.exception("informer callback failed", extra={"kind": self._kind})

    def _loop(self) -> None:
        listed = False
        while not self._stop.is_set():
            try:
                if not listed:
                    self._relist()
                    listed = True
                self._follow()
            except kube.Gone:
                listed = False  # the version is too old to watch from: only a new list tells what changed
            except kube.KubeError as exc:
                log.warning("list or watch failed", extra={"kind": self._kind, "error": str(exc)})
                self._stop.wait(RETRY_SECONDS)
            except Exception:
                # Never end the thread: without it the operator would stop seeing changes.
                log.exception("informer failed", extra={"kind": self._kind})
                self._stop.wait(RETRY_SECONDS)
