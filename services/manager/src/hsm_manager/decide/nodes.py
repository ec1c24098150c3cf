"""Per node of a pool: devices found, the kubelet's count of the pool's resource, and the device plugin."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from hsm_common import models, report


@dataclasses.dataclass(frozen=True)
class NodeResource:
    """What one Node object says of the pool's extended resource."""

    capacity: int
    allocatable: int


@dataclasses.dataclass(frozen=True)
class NodeReport:
    """One discovery pod's word on its node for the pool's HSMDevice."""

    node: str
    time: datetime.datetime | None
    """When the report was written; None before the pod's first report."""
    entry: report.DeviceEntry | None
    """The report's entry for the HSMDevice; None when there is no report or it names no such entry."""


def resource_of(node: Mapping[str, Any], resource: str) -> NodeResource:
    """The resource's capacity and allocatable count in a Node object (0 where the kubelet lists none)."""
    status = node.get("status") or {}
    return NodeResource(
        capacity=_count((status.get("capacity") or {}).get(resource)),
        allocatable=_count((status.get("allocatable") or {}).get(resource)),
    )


def _count(quantity: object) -> int:
    # Extended resources are whole numbers, which the API server writes as plain digits.
    try:
        return max(int(str(quantity)), 0) if quantity is not None else 0
    except ValueError:
        return 0


def summarize(
    reports: list[NodeReport],
    resources: Mapping[str, NodeResource] | None,
    previous: list[models.PoolNode],
) -> list[models.PoolNode]:
    """One entry per node that runs discovery or offers the resource, by name.

    A node's newest report counts (two discovery pods share a node during a rollout). resources maps node
    names to what their Node objects say; None when the Nodes were not read this pass, so the figures
    shown before are kept.
    """
    newest: dict[str, report.DeviceEntry | None] = {}
    for item in sorted(reports, key=_time):
        if item.node:  # else a pod not scheduled yet
            newest[item.node] = item.entry
    if resources is None:
        figures = {node.node_name: (node.capacity, node.allocatable) for node in previous}
    else:
        figures = {name: (found.capacity, found.allocatable) for name, found in resources.items()}
    offering = {name for name, (capacity, _) in figures.items() if capacity}
    summary: list[models.PoolNode] = []
    for name in sorted(set(newest) | offering):
        entry = newest.get(name)
        plugin = entry.plugin if entry is not None else None
        # A Node read without the resource offers none of it; a Node not read shows nothing.
        capacity, allocatable = figures.get(name, (0, 0) if resources is not None else (None, None))
        summary.append(
            models.PoolNode(
                node_name=name,
                devices_found=len(entry.devices) if entry is not None else 0,
                capacity=capacity,
                allocatable=allocatable,
                plugin_registered=plugin.registered if plugin is not None else None,
                plugin_healthy=plugin.healthy if plugin is not None else None,
                plugin_error=plugin.error if plugin is not None else None,
            )
        )
    return summary


def _time(item: NodeReport) -> float:
    return item.time.timestamp() if item.time is not None else float("-inf")


def problem(node: models.PoolNode, resource: str) -> str | None:
    """Why agents on node cannot get their devices, for a Warning event; None when nothing is in the way."""
    where = f"node {node.node_name}"
    if node.plugin_error:
        return f"device plugin for {resource} on {where}: {node.plugin_error}"
    if not node.devices_found or node.plugin_registered:
        return None
    found = f"agents cannot start there ({node.devices_found} devices found)"
    if node.plugin_registered is None:
        return f"discovery on {where} serves no device plugin for {resource}: {found}"
    return f"device plugin for {resource} on {where} is not registered with the kubelet: {found}"


def warnings(previous: list[models.PoolNode], current: list[models.PoolNode], resource: str) -> list[str]:
    """The problems of current nodes that the previous status did not show already (each warned once)."""
    before = {node.node_name: problem(node, resource) for node in previous}
    found = ((node.node_name, problem(node, resource)) for node in current)
    return [text for name, text in found if text is not None and before.get(name) != text]
