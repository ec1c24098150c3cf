"""kopf handlers: each reads the event, hands it to the queue or the reconciler, and returns.

Single active operator: the manager Deployment runs one replica with the Recreate strategy and kopf runs
standalone (no peering objects, so no extra CRD or RBAC); a second replica would only be started after
the first is gone. HSMSecrets and managed Secrets are not kopf's: the runtime's informers follow them
(see operator.informer), so kopf handles only the few HSMDevices and the discovery and agent pods.

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
        obj = rt.client.get(constants.KIND_DEVICE, namespace, device)
    except kube.NotFound:
        return
    rt.reconciler.reconcile(obj)
