"""Wires the store, the gRPC, health and metrics servers and pcscd into one agent (the bootstrap)."""

from __future__ import annotations

import dataclasses
import logging
import time

from hsm_agent import health, metrics, pcscd, server, tlsreload
from hsm_agent.store import secret_store
from hsm_metricsauth import server as metricsauth

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    store: secret_store.StoreConfig
    listen: str
    """gRPC address host:port (port 0 picks a free one)."""
    health_listen: str
    """Address of the kubelet's probes (host:port, plain HTTP)."""
    tls_cert: str | None = None
    """Server certificate (PEM file); enables TLS."""
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """CA of client certificates; makes them required (mutual TLS)."""
    metrics: metricsauth.Settings | None = None
    """The HTTPS metrics endpoint; None serves none."""
    pcscd: bool = False
    """Supervise pcscd (modules that reach tokens through PC/SC)."""
    grace: float = 10.0
    """Seconds in-flight calls get to finish at shutdown."""


def _tls(config: AgentConfig, meters: metrics.Metrics) -> tlsreload.Reloading | None:
    if not config.tls_cert:
        return None
    if not config.tls_key:
        raise ValueError("--tls-cert needs --tls-key")
    return tlsreload.Reloading(tlsreload.Files(config.tls_cert, config.tls_key, config.tls_client_ca), meters)


class Agent:
    """One agent: start() brings everything up, stop() shuts it down gracefully."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.metrics = metrics.Metrics()
        self.store = secret_store.SecretStore(config.store, self.metrics)
        self.servicer = server.Servicer(self.store, self.metrics)
        # The files are re-read when the kubelet swaps them: a renewed leaf or CA needs no restart.
        self.tls = _tls(config, self.metrics)
        credentials = self.tls.credentials() if self.tls is not None else None
        self.grpc_server, self.port = server.build(self.servicer, config.listen, credentials)
        self.health = health.HealthServer(config.health_listen, self.store)
        self.metrics.index_size.set_function(lambda: len(self.store.index))
        self.metrics_server = (
            None
            if config.metrics is None
            else metricsauth.build(
                config.metrics,
                self.metrics.registry,
                "hsm_agent_metrics_certificate_expiry_timestamp_seconds",
            )
        )
        self.pcscd = pcscd.Supervisor() if config.pcscd else None

    def start(self) -> None:
        if self.pcscd is not None:
            self.pcscd.start()
        self.store.start()
        self.grpc_server.start()
        self.health.start()
        if self.metrics_server is not None:
            self.metrics_server.start()
        log.info(
            "agent started",
            extra={
                "port": self.port,
                "health_port": self.health.port,
                "metrics_port": self.metrics_server.port if self.metrics_server is not None else None,
            },
        )

    def wait_ready(self, timeout: float) -> bool:
        """True once the store is logged in with its index loaded, False after timeout seconds."""
        deadline = time.monotonic() + timeout
        while not self.store.ready:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Refuse new calls, end watch streams, let in-flight calls finish, then release the token."""
        self.servicer.stopping.set()
        stopped = self.grpc_server.stop(self.config.grace)
        self.store.index.close_watchers()
        self.servicer.readers.close_all()
        stopped.wait(self.config.grace + 1)
        self.health.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.store.stop()
        if self.pcscd is not None:
            self.pcscd.stop()
        log.info("agent stopped")
