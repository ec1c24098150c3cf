"""Prometheus metrics of discovery, in a registry of their own (served by health.py)."""

from __future__ import annotations

import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)

DEVICES_FOUND = prometheus_client.Gauge(
    "hsm_discovery_devices_found",
    "Present USB devices matched per HSMDevice on this node",
    ["hsm_device"],
    registry=REGISTRY,
)
SCANS = prometheus_client.Counter("hsm_discovery_scans", "Full USB scans", registry=REGISTRY)
SCAN_ERRORS = prometheus_client.Counter("hsm_discovery_scan_errors", "Failed USB scans", registry=REGISTRY)
UDEV_EVENTS = prometheus_client.Counter(
    "hsm_discovery_udev_events",
    "USB uevents received, by action and netlink source (udev or kernel)",
    ["action", "source"],
    registry=REGISTRY,
)
REPORT_PATCHES = prometheus_client.Counter(
    "hsm_discovery_report_patches", "Reports written (content changes and heartbeats)", registry=REGISTRY
)
REPORT_FAILURES = prometheus_client.Counter(
    "hsm_discovery_report_failures", "Reports that could not be written", registry=REGISTRY
)
API_ERRORS = prometheus_client.Counter(
    "hsm_discovery_api_errors", "Failed HSMDevice list/watch calls", registry=REGISTRY
)


def set_devices_found(counts: dict[str, int]) -> None:
    """Set the per-HSMDevice gauge to counts, dropping HSMDevices that are no longer reported."""
    current = {labels[0] for labels in DEVICES_FOUND._metrics}
    for gone in current - counts.keys():
        DEVICES_FOUND.remove(gone)
    for name, count in counts.items():
        DEVICES_FOUND.labels(hsm_device=name).set(count)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return prometheus_client.generate_latest(REGISTRY), prometheus_client.CONTENT_TYPE_LATEST
