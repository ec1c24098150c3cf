"""Prometheus metrics of discovery, in a registry of their own (served by the metrics endpoint)."""

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

PLUGIN_REGISTRATIONS = prometheus_client.Counter(
    "hsm_discovery_plugin_registrations",
    "Device plugin registrations with the kubelet, by HSMDevice and result (ok or error)",
    ["hsm_device", "result"],
    registry=REGISTRY,
)
PLUGIN_ALLOCATIONS = prometheus_client.Counter(
    "hsm_discovery_plugin_allocations",
    "Device plugin answers to the kubelet per container, by HSMDevice and result "
    "(ok, unknown_device or unhealthy_device)",
    ["hsm_device", "result"],
    registry=REGISTRY,
)
PLUGIN_HEALTHY_DEVICES = prometheus_client.Gauge(
    "hsm_discovery_plugin_healthy_devices",
    "Devices the device plugin offers the kubelet as Healthy, per HSMDevice",
    ["hsm_device"],
    registry=REGISTRY,
)


def _set_per_hsm_device(gauge: prometheus_client.Gauge, counts: dict[str, int]) -> None:
    """Set a per-HSMDevice gauge to counts, dropping HSMDevices that are no longer reported."""
    current = {labels[0] for labels in gauge._metrics}
    for gone in current - counts.keys():
        gauge.remove(gone)
    for name, count in counts.items():
        gauge.labels(hsm_device=name).set(count)


def set_devices_found(counts: dict[str, int]) -> None:
    """Set the present-devices gauge to counts per HSMDevice."""
    _set_per_hsm_device(DEVICES_FOUND, counts)


def set_plugin_healthy(counts: dict[str, int]) -> None:
    """Set the plugins' healthy-devices gauge to counts per HSMDevice served."""
    _set_per_hsm_device(PLUGIN_HEALTHY_DEVICES, counts)
