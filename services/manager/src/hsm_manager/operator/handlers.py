"""kopf handlers: each reads the event, hands it to the queue or the reconciler, and returns.

Single active operator: the manager Deployment runs one replica with the Recreate strategy and kopf runs
standalone (no peering objects, so no extra CRD or RBAC); a second replica would only be started after
the first is gone. Secrets are watched only through a label-filtered event handler, never through
on.create/on.update (kopf would store their data in a last-handled annotation).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import kopf

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.agents import registry, watch
from hsm_manager.decide import agentspec, discoveryspec
from hsm_manager.gateway import pki
from hsmproto.v1 import hsm_pb2

from . import backstop, config, devices, metrics, pools, queue, syncer

log = logging.getLogger(__name__)

PREFIX = constants.GROUP
FINALIZER = f"{constants.GROUP}/finalizer"
MANAGED = {constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE}


@dataclasses.dataclass
class Runtime:
    """Everything the handlers share, wired once at start-up (the bootstrap seam)."""

    cfg: config.OperatorConfig
    client: kube.Kube
    agents: registry.AgentRegistry
    known: devices.Devices
    syncer: syncer.Syncer
    queue: queue.SyncQueue
    reconciler: pools.Reconciler
    watches: watch.Watches
    backstop: backstop.Backstop


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not wired yet")
    return _runtime


def bootstrap(cfg: config.OperatorConfig, client: kube.Kube) -> Runtime:
    """Create the CA, client certificate and MAC key if needed and wire the runtime."""
    global _runtime
    ca = pki.ensure_ca(client, cfg.namespace)
    pki.ensure_client(client, cfg.namespace, ca)
    mac_key = syncer.ensure_mac_key(client, cfg.namespace)
    agents = registry.AgentRegistry(client, registry.SecretTLS(client, cfg.namespace))
    known = devices.Devices(cfg.namespace)
    # Known before kopf resumes any HSMSecret: else a restart would mark them "device not found" until
    # their backstop, since HSMSecrets and HSMDevices resume in no particular order.
    for device in client.list_custom(constants.KIND_DEVICE):
        known.add(device["metadata"]["namespace"], device["metadata"]["name"])
    sync = syncer.Syncer(client, agents, known, cfg, mac_key)

    def run(key: tuple[str, str]) -> None:
        if sync.run(key) == "gone":
            checks.forget(key)  # deleted while the operator was down: no delete handler will say so

    work = queue.SyncQueue(run, cfg.workers)
    checks = backstop.Backstop(work.put)

    def on_event(endpoint: registry.AgentEndpoint, event: hsm_pb2.SecretEvent) -> None:
        if event.kind == hsm_pb2.SecretEvent.KIND_SNAPSHOT_END:
            return
        snapshot = event.kind == hsm_pb2.SecretEvent.KIND_SNAPSHOT
        for key in sync.paths.readers(event.path):
            # A (re)connect replays every head: only those that moved since the last pass need one.
            if not (snapshot and sync.in_sync_at(key, event.version)):
                work.put(key)

    def on_state(endpoint: registry.AgentEndpoint, connected: bool) -> None:
        if connected:
            metrics.AGENTS_CONNECTED.inc()
        else:
            metrics.AGENTS_CONNECTED.dec()
        if not connected:
            # Its HSMSecrets must show DeviceUnavailable now, not at the next backstop.
            for key in sync.paths.tracked():
                work.put(key)

    _runtime = Runtime(
        cfg=cfg,
        client=client,
        agents=agents,
        known=known,
        syncer=sync,
        queue=work,
        reconciler=pools.Reconciler(client, ca, cfg, agents),
        watches=watch.Watches(agents, on_event, on_state),
        backstop=checks,
    )
    work.start()
    checks.start()
    return _runtime


# ---------------------------------------------------------------- settings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = 8
    settings.networking.request_timeout = 30


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    if _runtime is not None:
        _runtime.backstop.stop()
        _runtime.watches.stop_all()
        _runtime.queue.stop()
        _runtime.agents.close()


# ---------------------------------------------------------------- HSMDevice → pool, discovery, agents


@kopf.on.resume(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE)
@kopf.on.create(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE)
@kopf.on.update(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, field="spec")
def device_changed(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    rt = runtime()
    rt.known.add(_ns(namespace), name)
    rt.reconciler.reconcile(dict(body))
    _requeue_all(rt)


@kopf.on.delete(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, optional=True)
def device_deleted(namespace: str | None, name: str, **_: Any) -> None:
    # Pool, DaemonSet and agents go with the HSMDevice through their ownerReferences.
    rt = runtime()
    rt.known.remove(_ns(namespace), name)
    _requeue_all(rt)


@kopf.timer(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, interval=10.0, idle=0)
def device_tick(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    rt = runtime()
    rt.known.add(_ns(namespace), name)
    rt.reconciler.reconcile(dict(body), read_capacity=True)
    _refresh_watches(rt)


@kopf.on.event("v1", "pods", labels={constants.LABEL_COMPONENT: discoveryspec.COMPONENT})
def discovery_pod_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    device = (body.get("metadata", {}).get("labels") or {}).get(constants.LABEL_DEVICE)
    if device:
        _reconcile_by_name(runtime(), _ns(namespace), device)


@kopf.on.event("v1", "pods", labels={constants.LABEL_COMPONENT: agentspec.COMPONENT})
def agent_pod_event(**_: Any) -> None:
    rt = runtime()
    rt.agents.invalidate()
    _refresh_watches(rt)


def _ns(namespace: str | None) -> str:
    # Every resource handled here is namespaced; kopf types the argument for cluster-scoped ones too.
    if namespace is None:
        raise kopf.PermanentError("a namespaced object arrived without a namespace")
    return namespace


def _reconcile_by_name(rt: Runtime, namespace: str, device: str) -> None:
    try:
        obj = rt.client.get_custom(constants.KIND_DEVICE, namespace, device)
    except kube.NotFound:
        return
    rt.reconciler.reconcile(obj)


def _refresh_watches(rt: Runtime) -> None:
    endpoints: list[registry.AgentEndpoint] = []
    for namespace in sorted({ns for ns, _ in rt.known.all()}):
        endpoints.extend(rt.agents.endpoints(namespace))
    rt.watches.reconcile(endpoints)


def _requeue_all(rt: Runtime) -> None:
    for key in sorted(set(rt.syncer.paths.tracked()) | set(rt.syncer.unresolved())):
        rt.queue.put(key)


# ---------------------------------------------------------------- HSMSecret sync triggers


@kopf.on.resume(constants.GROUP, constants.VERSION, constants.PLURAL_SECRET)
@kopf.on.create(constants.GROUP, constants.VERSION, constants.PLURAL_SECRET)
@kopf.on.update(constants.GROUP, constants.VERSION, constants.PLURAL_SECRET, field="spec")
async def hsmsecret_changed(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> None:
    rt = runtime()
    key = (_ns(namespace), name)
    rt.backstop.track(key, float(spec.get("syncInterval") or rt.cfg.default_sync_interval))
    rt.queue.put(key)


@kopf.on.delete(constants.GROUP, constants.VERSION, constants.PLURAL_SECRET, optional=True)
async def hsmsecret_deleted(namespace: str | None, name: str, **_: Any) -> None:
    # The Secret goes with the HSMSecret through its ownerReference.
    rt = runtime()
    rt.syncer.forget((_ns(namespace), name))
    rt.backstop.forget((_ns(namespace), name))


@kopf.on.event("v1", "secrets", labels=MANAGED)
def managed_secret_event(event: kopf.RawEvent, **_: Any) -> None:
    obj = event.get("object") or {}
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(constants.LABEL_SECRET)
    if not owner:
        return
    rt = runtime()
    key = (meta["namespace"], owner)
    if event.get("type") != "DELETED":
        if rt.syncer.wrote(meta["namespace"], meta["name"], meta.get("resourceVersion", "")):
            return  # our own write coming back
        if rt.syncer.intact(key, dict(obj)):
            return  # a re-list after a watch restart, or a change of something we do not manage
    rt.queue.put(key)
