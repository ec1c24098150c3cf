"""kopf handlers: each reads the event, hands it to the queue or the reconciler, and returns.

Single active operator: the manager Deployment runs one replica with the Recreate strategy and kopf runs
standalone (no peering objects, so no extra CRD or RBAC); a second replica would only be started after
the first is gone. Secrets are watched only through a label-filtered event handler, never through
on.create/on.update (kopf would store their data in a last-handled annotation); HSMSecrets through an
event handler as well (kopf would write its bookkeeping into each of them).

Handlers find the operator's runtime in kopf's memo (see memo_of), never in a module global, so a test
calls them with a memo holding a runtime built from fakes.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import agentspec, discoveryspec

from . import runtime

log = logging.getLogger(__name__)

PREFIX = constants.GROUP
FINALIZER = f"{constants.GROUP}/finalizer"
MANAGED = {constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE}
_MEMO_KEY = "runtime"


def memo_of(rt: runtime.Runtime) -> kopf.Memo:
    """The operator memo to run kopf with: every handler finds rt in it (kopf copies it per object)."""
    return kopf.Memo({_MEMO_KEY: rt})


def _runtime(memo: kopf.Memo) -> runtime.Runtime:
    rt = memo.get(_MEMO_KEY)
    if not isinstance(rt, runtime.Runtime):
        raise RuntimeError("the operator memo holds no runtime: run kopf with memo_of(bootstrap(...))")
    return rt


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


@kopf.on.startup()
def start(memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).start()


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).stop()


# ---------------------------------------------------------------- HSMDevice → pool, discovery, agents


@kopf.on.resume(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE)
@kopf.on.create(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE)
@kopf.on.update(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, field="spec")
def device_changed(body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    rt = _runtime(memo)
    rt.known.add(_ns(namespace), name)
    rt.reconciler.reconcile(dict(body))
    rt.requeue_all()


@kopf.on.delete(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, optional=True)
def device_deleted(namespace: str | None, name: str, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    rt = _runtime(memo)
    rt.known.remove(_ns(namespace), name)
    rt.reconciler.forget(_ns(namespace), name, str(meta["uid"]))
    rt.requeue_all()


@kopf.timer(constants.GROUP, constants.VERSION, constants.PLURAL_DEVICE, interval=10.0, idle=0)
def device_tick(body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    rt = _runtime(memo)
    rt.known.add(_ns(namespace), name)
    rt.reconciler.reconcile(dict(body), refresh=True)
    rt.refresh_watches()


@kopf.on.event("v1", "pods", labels={constants.LABEL_COMPONENT: discoveryspec.COMPONENT})
def discovery_pod_event(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    device = (body.get("metadata", {}).get("labels") or {}).get(constants.LABEL_DEVICE)
    if device:
        _reconcile_by_name(_runtime(memo), _ns(namespace), device)


@kopf.on.event("v1", "pods", labels={constants.LABEL_COMPONENT: agentspec.COMPONENT})
def agent_pod_event(memo: kopf.Memo, **_: Any) -> None:
    rt = _runtime(memo)
    rt.directory.invalidate()
    rt.refresh_watches()


def _ns(namespace: str | None) -> str:
    # Every resource handled here is namespaced; kopf types the argument for cluster-scoped ones too.
    if namespace is None:
        raise kopf.PermanentError("a namespaced object arrived without a namespace")
    return namespace


def _reconcile_by_name(rt: runtime.Runtime, namespace: str, device: str) -> None:
    try:
        obj = rt.client.get_custom(constants.KIND_DEVICE, namespace, device)
    except kube.NotFound:
        return
    rt.reconciler.reconcile(obj)


# ---------------------------------------------------------------- HSMSecret sync triggers


@kopf.on.event(constants.GROUP, constants.VERSION, constants.PLURAL_SECRET)
async def hsmsecret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Queue a pass of an HSMSecret seen for the first time or whose spec changed; forget a deleted one.

    A raw event handler, where create/update handlers would have kopf write its bookkeeping into each
    HSMSecret (one more write, and one more watch event, per object). A spec change is a new generation;
    the status patches of the passes leave it as it is.
    """
    obj = event.get("object") or {}
    meta = obj.get("metadata") or {}
    rt = _runtime(memo)
    key = (_ns(meta.get("namespace")), str(meta.get("name")))
    if event.get("type") == "DELETED":
        rt.generations.pop(key, None)
        rt.syncer.forget(key)
        rt.backstop.forget(key)
        return
    generation = meta.get("generation")
    seen = (str(meta.get("uid")), generation if isinstance(generation, int) else 0)
    if rt.generations.get(key) == seen:
        return
    rt.generations[key] = seen
    spec = obj.get("spec") or {}
    rt.backstop.track(key, float(spec.get("syncInterval") or rt.cfg.default_sync_interval))
    rt.queue.put(key)


@kopf.on.event("v1", "secrets", labels=MANAGED)
def managed_secret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = event.get("object") or {}
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(constants.LABEL_SECRET)
    if not owner:
        return
    rt = _runtime(memo)
    key = (meta["namespace"], owner)
    if event.get("type") != "DELETED":
        if rt.syncer.wrote(meta["namespace"], meta["name"], meta.get("resourceVersion", "")):
            return  # our own write coming back
        if rt.syncer.intact(key, dict(obj)):
            return  # a re-list after a watch restart, or a change of something we do not manage
    rt.queue.put(key)
