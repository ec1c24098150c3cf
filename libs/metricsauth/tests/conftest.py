"""Fixtures: an endpoint serving a registry of its own, reviewing tokens with the stand-in ``review_api``."""

from __future__ import annotations

import collections.abc
import pathlib
from typing import Any

import prometheus_client
import pytest

from hsm_metricsauth import server


@pytest.fixture
def registry() -> prometheus_client.CollectorRegistry:
    found = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("test_scrapes", "A counter to find in the output", registry=found).inc()
    return found


@pytest.fixture
def serve(
    review_api: Any, registry: prometheus_client.CollectorRegistry
) -> collections.abc.Iterator[collections.abc.Callable[..., server.MetricsServer]]:
    """Start an endpoint on 127.0.0.1 (port 0) with the given cert_dir; stopped after the test."""
    started: list[server.MetricsServer] = []

    def start(cert_dir: pathlib.Path | None = None) -> server.MetricsServer:
        settings = server.Settings("127.0.0.1:0", str(cert_dir or ""), str(review_api.kubeconfig))
        found = server.build(settings, registry, "test_metrics_certificate_expiry_timestamp_seconds")
        found.start()
        started.append(found)
        return found

    yield start
    for found in started:
        found.stop()
