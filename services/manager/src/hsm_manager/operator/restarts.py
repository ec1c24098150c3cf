"""Restarting an HSMSecret's rolloutRestartTargets as `kubectl rollout restart` does; events and a metric."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable

from hsm_common import models
from hsm_manager import kube
from hsm_manager.decide import rollout

from . import metrics

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod template annotation kubectl rollout restart sets: a new value rolls the pods."""

Key = tuple[str, str]
"""(namespace, HSMSecret name)."""


def restart(
    client: kube.Kube, obj: kube.Obj, targets: list[models.RolloutRestartTarget], now: datetime.datetime
) -> list[rollout.Outcome]:
    """Patch each target's pod template with the restart annotation; a target that is missing or may not
    be patched is a Warning event and an outcome, never an exception (the Secret is synced all the same)."""
    namespace = obj["metadata"]["namespace"]
    # RFC 3339 as kubectl writes it, with microseconds: two restarts within a second still differ.
    at = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
    outcomes: list[rollout.Outcome] = []
    for target in targets:
        try:
            client.patch_workload(target.kind.value, namespace, target.name, patch)
        except kube.NotFound:
            outcome = rollout.Outcome(target, rollout.Failure.NOT_FOUND)
        except kube.KubeError as error:
            forbidden = error.status == 403
            failure = rollout.Failure.FORBIDDEN if forbidden else rollout.Failure.ERROR
            outcome = rollout.Outcome(target, failure, str(error))
        else:
            outcome = rollout.Outcome(target)
            metrics.ROLLOUT_RESTARTS.labels(namespace, target.kind.value).inc()
        outcomes.append(outcome)
    restarted = [rollout.describe(o.target) for o in outcomes if o.failure is None]
    if restarted:
        client.event(obj, "RolloutRestarted", f"restarted {', '.join(restarted)}: the Secret's data changed")
    for failed in (o for o in outcomes if o.failure is not None):
        client.event(obj, "RolloutRestartFailed", rollout.failure_message(failed), warning=True)
        log.warning(
            "rollout restart failed",
            extra={
                "namespace": namespace,
                "hsmsecret": obj["metadata"]["name"],
                "target": rollout.describe(failed.target),
                "reason": str(failed.failure),
            },
        )
    return outcomes


class Deferred:
    """Passes asked for later, one timer per HSMSecret at most: a restart held back by minRestartInterval
    runs when it ends, however many passes see it waiting meanwhile."""

    def __init__(self, put: Callable[[Key], None]) -> None:
        self._put = put
        # Guards _timers: sync workers schedule, timer threads fire, stop cancels.
        self._lock = threading.Lock()
        self._timers: dict[Key, threading.Timer] = {}

    def after(self, key: Key, seconds: float) -> None:
        """Queue a pass of key in seconds, unless one is already scheduled."""
        with self._lock:
            if key in self._timers:
                return
            timer = threading.Timer(max(seconds, 0.0), self._fire, (key,))
            timer.daemon = True
            self._timers[key] = timer
        timer.start()

    def _fire(self, key: Key) -> None:
        with self._lock:
            self._timers.pop(key, None)
        self._put(key)

    def stop(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
