"""Prometheus metrics of the API; under gunicorn they live in PROMETHEUS_MULTIPROC_DIR (files per worker).

prometheus_client picks its multiprocess value class when it is first imported, so the launcher
(``server``) sets PROMETHEUS_MULTIPROC_DIR before anything imports this module.
"""

from __future__ import annotations

import os

import prometheus_client
from prometheus_client import multiprocess

REQUESTS = prometheus_client.Counter(
    "hsm_api_requests_total", "API requests by route, method and status code", ["route", "method", "code"]
)
LATENCY = prometheus_client.Histogram(
    "hsm_api_request_duration_seconds",
    "API request latency by route and method",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENT_CALLS = prometheus_client.Counter(
    "hsm_api_agent_calls_total",
    "gRPC calls from the API to agents by method and result",
    ["method", "result"],
)
AGENT_LATENCY = prometheus_client.Histogram(
    "hsm_api_agent_call_duration_seconds",
    "Latency of gRPC calls from the API to agents",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
REPAIRS = prometheus_client.Counter(
    "hsm_api_mirror_repairs_total", "Mirror repair actions by kind and result", ["kind", "result"]
)

#: The metrics endpoint's certificate notAfter (a gauge the endpoint itself serves).
CERTIFICATE_EXPIRY = "hsm_api_metrics_certificate_expiry_timestamp_seconds"


def observe_agent_call(method: str, outcome: str, seconds: float) -> None:
    """Count and time one agent call (the gateway's observer)."""
    AGENT_LATENCY.labels(method).observe(seconds)
    AGENT_CALLS.labels(method, outcome).inc()


def observe_repair(kind: str, ok: bool) -> None:
    """Count one repair write of POST /hsm/mirror/sync."""
    REPAIRS.labels(kind, "ok" if ok else "error").inc()


def observe_request(route: str, method: str, code: int, seconds: float) -> None:
    """Record one finished API request; route is the rule (never the concrete path, which names secrets)."""
    REQUESTS.labels(route, method, str(code)).inc()
    LATENCY.labels(route, method).observe(seconds)


def registry() -> prometheus_client.CollectorRegistry:
    """A registry that reads every worker's values (multiprocess) or this process's (no multiprocess dir)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return prometheus_client.REGISTRY


def mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's child_exit hook)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
