"""Prometheus metrics of the operator (prefix hsm_manager_), served on the metrics port."""

from __future__ import annotations

import prometheus_client

from hsm_metricsauth import server as metricsauth

SYNC_CALLS = prometheus_client.Counter(
    "hsm_manager_sync_total", "HSMSecret sync passes by outcome", ["result"]
)
SYNC_ERRORS = prometheus_client.Counter(
    "hsm_manager_sync_errors_total", "HSMSecret sync passes that failed, by reason", ["reason"]
)
SYNC_DURATION = prometheus_client.Histogram(
    "hsm_manager_sync_duration_seconds",
    "Duration of one HSMSecret sync pass",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_BACKLOG = prometheus_client.Gauge(
    "hsm_manager_sync_queue_backlog", "HSMSecrets waiting for a sync pass"
)
SECRETS_BY_STATUS = prometheus_client.Gauge(
    "hsm_manager_hsmsecrets", "HSMSecrets by their last sync status", ["status"]
)
AGENTS_CONNECTED = prometheus_client.Gauge(
    "hsm_manager_agents_connected", "Agents with a live WatchSecrets stream"
)
POOL_PHASE = prometheus_client.Gauge(
    "hsm_manager_pool_phase", "1 for the current phase of each HSMPool", ["namespace", "pool", "phase"]
)
DEVICE_OBJECTS_USED = prometheus_client.Gauge(
    "hsm_manager_device_objects_used",
    "Objects on each device's token, as its agent last reported",
    ["namespace", "pool", "serial"],
)
DEVICE_OBJECTS_MAX = prometheus_client.Gauge(
    "hsm_manager_device_objects_max",
    "Object budget of each device, as its agent last reported",
    ["namespace", "pool", "serial"],
)
AGENT_DEPLOYMENT_CHANGES = prometheus_client.Counter(
    "hsm_manager_agent_deployment_changes_total", "Agent Deployments created, replaced or deleted", ["action"]
)
MIRROR_REPAIRS = prometheus_client.Counter(
    "hsm_manager_mirror_repairs_total",
    "Writes of the periodic mirror repair by kind and result",
    ["kind", "result"],
)


def serve(port: int, cert_dir: str) -> None:
    """Serve /metrics on port in a daemon thread, over HTTPS to callers allowed to get it;
    metricsauth.SetupError when it cannot."""
    settings = metricsauth.Settings(f"0.0.0.0:{port}", cert_dir)
    expiry = "hsm_manager_metrics_certificate_expiry_timestamp_seconds"
    metricsauth.build(settings, prometheus_client.REGISTRY, expiry).start()


CERTIFICATE_EXPIRY = prometheus_client.Gauge(
    "hsm_manager_certificate_expiry_timestamp_seconds",
    "notAfter of each certificate the manager keeps: its CAs (role signing, next, previous), its client "
    "leaf, each agent's serving leaf, the API's serving certificate (role api, issued or supplied) and the "
    "metrics endpoints' (role metrics)",
    ["role", "namespace", "name"],
)
CA_ROTATION_PHASE = prometheus_client.Gauge(
    "hsm_manager_ca_rotation_phase", "1 for the phase the CA rotation is in", ["phase"]
)
CA_ROTATION_STEPS = prometheus_client.Counter(
    "hsm_manager_ca_rotation_steps", "Steps the CA rotation took (Begin, Promote, Drop)", ["step"]
)
ROLLOUT_RESTARTS = prometheus_client.Counter(
    "hsm_manager_rollout_restarts_total",
    "Workloads restarted because their HSMSecret's Secret data changed, by namespace and kind",
    ["namespace", "kind"],
)
