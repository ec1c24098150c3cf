"""The operator's long-lived parts, wired once (the bootstrap seam) and handed to the handlers in kopf's memo.

``bootstrap`` wires the real adapters; tests hand in a fake Kubernetes client and a fake agent directory
at exactly that seam and drive the same runtime.
"""

from __future__ import annotations

import dataclasses

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import model
from hsm_manager.gateway import endpoints, pki, watch

from . import backstop, config, devices, metrics, mirrorloop, pools, queue, syncer


@dataclasses.dataclass
class Runtime:
    """Everything the handlers share."""

    cfg: config.OperatorConfig
    client: kube.Kube
    directory: endpoints.Directory
    known: devices.Devices
    syncer: syncer.Syncer
    queue: queue.SyncQueue
    reconciler: pools.Reconciler
    watches: watch.Watches
    backstop: backstop.Backstop
    mirror: mirrorloop.MirrorLoop
    generations: dict[tuple[str, str], tuple[str, int]] = dataclasses.field(default_factory=dict)
    """(uid, generation) of each HSMSecret whose spec a pass was queued for (used by the event loop only)."""

    def start(self) -> None:
        """Start the sync workers, the backstop and the mirror repair loop."""
        self.queue.start()
        self.backstop.start()
        self.mirror.start()

    def stop(self) -> None:
        """Stop every thread and close the agents' channels."""
        self.mirror.stop()
        self.backstop.stop()
        self.watches.stop_all()
        self.queue.stop()
        self.directory.close()

    def refresh_watches(self) -> None:
        """One watch stream per reachable agent in the namespaces of the known HSMDevices."""
        found: list[endpoints.AgentEndpoint] = []
        for namespace in sorted({ns for ns, _ in self.known.all()}):
            found.extend(self.directory.endpoints(namespace))
        self.watches.reconcile(found)

    def requeue_all(self) -> None:
        """Queue a pass of every HSMSecret whose device may have changed: tracked and unresolved ones."""
        for key in sorted(set(self.syncer.paths.tracked()) | set(self.syncer.unresolved())):
            self.queue.put(key)


class _AgentTriggers:
    """Turns what the watch streams report into sync passes."""

    def __init__(self, sync: syncer.Syncer, work: queue.SyncQueue) -> None:
        self._sync = sync
        self._work = work

    def on_event(self, endpoint: endpoints.AgentEndpoint, event: model.Event) -> None:
        if event.kind is model.EventKind.SNAPSHOT_END:
            return
        snapshot = event.kind is model.EventKind.SNAPSHOT
        for key in self._sync.paths.readers(event.path):
            # A (re)connect replays every head: only those that moved since the last pass need one.
            if not (snapshot and self._sync.in_sync_at(key, event.version)):
                self._work.put(key)

    def on_state(self, endpoint: endpoints.AgentEndpoint, connected: bool) -> None:
        if connected:
            metrics.AGENTS_CONNECTED.inc()
            return
        metrics.AGENTS_CONNECTED.dec()
        # Its HSMSecrets must show DeviceUnavailable now, not at the next backstop.
        for key in self._sync.paths.tracked():
            self._work.put(key)


def bootstrap(
    cfg: config.OperatorConfig, client: kube.Kube, directory: endpoints.Directory | None = None
) -> Runtime:
    """Create the CA, client certificate and MAC key if needed and wire the runtime (not yet started).

    directory: where the agents are; by default found from their pods, over mTLS, with cfg.call_timeout.
    """
    ca = pki.ensure_ca(client, cfg.namespace)
    pki.ensure_client(client, cfg.namespace, ca)
    mac_key = syncer.ensure_mac_key(client, cfg.namespace)
    if directory is None:
        directory = endpoints.AgentRegistry(
            client, endpoints.SecretTLS(client, cfg.namespace), timeout=cfg.call_timeout
        )
    known = devices.Devices(cfg.namespace)
    # Known before kopf resumes any HSMSecret: else a restart would mark them "device not found" until
    # their backstop, since HSMSecrets and HSMDevices resume in no particular order.
    for device in client.list_custom(constants.KIND_DEVICE):
        known.add(device["metadata"]["namespace"], device["metadata"]["name"])
    sync = syncer.Syncer(client, directory, known, mac_key)

    def run(key: queue.Key) -> None:
        if sync.run(key) == "gone":
            checks.forget(key)  # deleted while the operator was down: no delete handler will say so

    work = queue.SyncQueue(run, cfg.workers)
    checks = backstop.Backstop(work.put)
    triggers = _AgentTriggers(sync, work)
    return Runtime(
        cfg=cfg,
        client=client,
        directory=directory,
        known=known,
        syncer=sync,
        queue=work,
        reconciler=pools.Reconciler(client, ca, cfg, directory),
        watches=watch.Watches(directory, triggers.on_event, triggers.on_state),
        backstop=checks,
        mirror=mirrorloop.MirrorLoop(directory, known, cfg.mirror_interval),
    )
