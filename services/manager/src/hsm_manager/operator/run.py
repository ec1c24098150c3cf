"""Start the operator: wire the runtime, serve metrics, run kopf with its liveness endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf

from hsm_manager import kube
from hsm_metricsauth import server as metricsauth

from . import config, handlers, metrics, runtime

log = logging.getLogger(__name__)


class _DropKopfSettings(logging.Filter):
    """Drops the OperatorSettings kopf attaches to every per-object record (kilobytes per log line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("settings", None)
        return True


def _quiet_kopf() -> None:
    objects = logging.getLogger("kopf.objects")
    objects.addFilter(_DropKopfSettings())
    # kopf logs every timer run and handler success at info: with a timer per HSMSecret that is hundreds of
    # lines a second at a thousand HSMSecrets. Our own sync logs say what happened.
    objects.setLevel(max(objects.getEffectiveLevel(), logging.WARNING))


def run(cfg: config.OperatorConfig) -> int:
    """Run until SIGTERM; returns the exit code."""
    _quiet_kopf()
    # Metrics first: an endpoint that cannot start stops the operator before it writes anything, and the
    # start-up Secrets the bootstrap writes stay the last step before kopf runs (tests wait for them).
    try:
        metrics.serve(cfg.metrics_port, cfg.metrics_cert_dir)
    except metricsauth.SetupError as error:
        log.error("the operator cannot serve its metrics", extra={"reason": str(error)})
        return 2
    client = kube.Kube.connect()
    memo = handlers.memo_of(runtime.bootstrap(cfg, client))
    log.info("operator starting", extra={"namespace": cfg.namespace, "metrics_port": cfg.metrics_port})
    # standalone: no peering (see handlers' docstring); clusterwide: HSMSecrets live in every namespace.
    kopf.run(
        standalone=True,
        clusterwide=True,
        liveness_endpoint=f"http://{cfg.health_listen}/healthz",
        loop=asyncio.new_event_loop(),
        memo=memo,
    )
    return 0
