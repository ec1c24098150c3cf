"""What queues sync passes: changes of HSMSecrets and managed Secrets, and what the agents' streams report."""

from __future__ import annotations

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import model
from hsm_manager.gateway import endpoints

from . import backstop, metrics, queue, syncer


class ClusterTriggers:
    """Turns the informers' HSMSecret and managed-Secret events into sync passes."""

    def __init__(
        self, sync: syncer.Syncer, work: queue.SyncQueue, checks: backstop.Backstop, default_interval: float
    ) -> None:
        self._sync = sync
        self._work = work
        self._checks = checks
        self._default_interval = default_interval

    def hsmsecret(self, kind: str, obj: kube.Obj) -> None:
        """A new HSMSecret or a new spec generation queues a pass (the passes' own status patches do not);
        a deleted one is forgotten."""
        meta = obj["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        if kind == "DELETED":
            self._sync.forget(key)
            self._checks.forget(key)
            return
        if not self._sync.hsmsecrets.saw(obj):
            return
        spec = obj.get("spec") or {}
        self._checks.track(key, float(spec.get("syncInterval") or self._default_interval))
        self._work.put(key)

    def secret(self, kind: str, obj: kube.Obj) -> None:
        """A managed Secret that changed under us, or went, queues a pass of its HSMSecret."""
        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        if kind == "DELETED":
            self._sync.secrets.gone(namespace, name)
        else:
            self._sync.secrets.saw(obj)
        owner = (meta.get("labels") or {}).get(constants.LABEL_SECRET)
        if not owner:
            return
        key = (namespace, owner)
        if kind != "DELETED":
            if self._sync.wrote(namespace, name, meta.get("resourceVersion", "")):
                return  # our own write coming back
            if self._sync.intact(key, obj):
                return  # a relist, or a change of something we do not manage
        self._work.put(key)


class AgentTriggers:
    """Turns what the agents' watch streams report into sync passes."""

    def __init__(self, sync: syncer.Syncer, work: queue.SyncQueue) -> None:
        self._sync = sync
        self._work = work

    def on_event(self, endpoint: endpoints.AgentEndpoint, event: model.Event) -> None:
        if event.kind is model.EventKind.SNAPSHOT_END:
            return
        snapshot = event.kind is model.EventKind.SNAPSHOT
        for key in self._sync.paths.readers(event.path):
            # A (re)connect replays every head: only those that moved since the last pass need one.
            if not (snapshot and self._sync.in_sync_at(key, event.path, event.version)):
                self._work.put(key)

    def on_state(self, endpoint: endpoints.AgentEndpoint, connected: bool) -> None:
        if connected:
            metrics.AGENTS_CONNECTED.inc()
            return
        metrics.AGENTS_CONNECTED.dec()
        # Its HSMSecrets must show DeviceUnavailable now, not at the next backstop.
        for key in self._sync.paths.tracked():
            self._work.put(key)
