"""Start the operator: wire the runtime, serve metrics, run kopf with its liveness endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf

from hsm_manager import kube

from . import config, handlers, metrics

log = logging.getLogger(__name__)


def run(cfg: config.OperatorConfig, metrics_port: int, health_listen: str) -> int:
    """Run until SIGTERM; returns the exit code."""
    client = kube.Kube.from_environment()
    handlers.bootstrap(cfg, client)
    metrics.serve(metrics_port)
    log.info("operator starting", extra={"namespace": cfg.namespace, "metrics_port": metrics_port})
    # standalone: no peering (see handlers' docstring); clusterwide: HSMSecrets live in every namespace.
    kopf.run(
        standalone=True,
        clusterwide=True,
        liveness_endpoint=f"http://{health_listen}/healthz",
        loop=asyncio.new_event_loop(),
    )
    return 0
