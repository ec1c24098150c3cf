"""Aggregation of discovery reports (with agents' capacity figures and the Nodes' resource counts) into an
HSMPool status, with freshness."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from hsm_common import constants, models, report

from . import agentreach, capacity, conditions, nodes, owners


@dataclasses.dataclass(frozen=True)
class DiscoveryPod:
    """What the operator knows about one discovery pod of the device."""

    name: str
    node: str
    annotation: str | None
    """The raw ``hsm.j5t.io/device-report`` annotation, None when the pod has not reported yet."""


@dataclasses.dataclass(frozen=True)
class _Parsed:
    pod: DiscoveryPod
    content: report.DeviceReport | None
    entry: report.DeviceEntry | None
    error: str | None


def _parse(pod: DiscoveryPod, device: str) -> _Parsed:
    if pod.annotation is None:
        return _Parsed(pod, None, None, None)
    try:
        parsed = report.DeviceReport.model_validate_json(pod.annotation)
    except pydantic.ValidationError as exc:
        # The count only: the annotation is ours, but its text does not belong in status.
        return _Parsed(pod, None, None, f"unreadable report ({exc.error_count()} errors)")
    entry = parsed.devices.get(device)
    failed = entry is not None and entry.status == report.ReportStatus.ERROR
    error = (entry.error or "discovery error") if entry is not None and failed else None
    return _Parsed(pod, parsed, entry, error)


def _age(now: datetime.datetime, then: datetime.datetime | None) -> float:
    return float("inf") if then is None else (now - then).total_seconds()


def _device_info(found: report.ReportedDevice) -> dict[str, str]:
    info = {
        "vendorId": found.vendor_id,
        "productId": found.product_id,
        "manufacturer": found.manufacturer,
        "product": found.product,
        "busPath": found.bus_path,
        "ccid": str(found.ccid).lower(),
    }
    return {k: v for k, v in info.items() if v}


def _devices(
    parsed: list[_Parsed],
    previous: list[models.AggregatedDevice],
    grace: float,
    now: datetime.datetime,
) -> list[models.AggregatedDevice]:
    """One entry per serial: the newest sighting wins; vanished devices linger unavailable within grace."""
    by_serial: dict[str, models.AggregatedDevice] = {}
    for item in parsed:
        if item.content is None or item.entry is None:
            continue
        fresh = _age(now, item.content.report_time) <= grace
        for found in item.entry.devices:
            if _age(now, found.last_seen) > grace:
                continue
            candidate = models.AggregatedDevice(
                device_path=found.device_path,
                serial_number=found.serial_number,
                node_name=item.content.node_name or item.pod.node,
                last_seen=found.last_seen,
                available=found.available and fresh,
                device_info=_device_info(found),
            )
            current = by_serial.get(found.serial_number)
            if current is None or _newer(candidate, current):
                by_serial[found.serial_number] = candidate
    for old in previous:
        if old.serial_number in by_serial or _age(now, old.last_seen) > grace:
            continue
        by_serial[old.serial_number] = old.model_copy(update={"available": False})
    return [by_serial[s] for s in sorted(by_serial)]


def _newer(candidate: models.AggregatedDevice, current: models.AggregatedDevice) -> bool:
    # An available sighting beats an unavailable one; otherwise the latest sighting wins.
    if candidate.available != current.available:
        return candidate.available
    return _age_key(candidate) > _age_key(current)


def _age_key(device: models.AggregatedDevice) -> float:
    return device.last_seen.timestamp() if device.last_seen else 0.0


def _phase(
    parsed: list[_Parsed], fresh: list[bool], total: int, available: int
) -> tuple[models.PoolPhase, str]:
    if not parsed:
        return models.PoolPhase.PENDING, "no discovery pod is running yet"
    reported = [p for p in parsed if p.content is not None]
    errors = [p for p in parsed if p.error]
    if not reported and not errors:
        return models.PoolPhase.AGGREGATING, f"waiting for the first report of {len(parsed)} discovery pods"
    if not any(fresh):
        return models.PoolPhase.ERROR, "every discovery report is older than the grace period"
    if available == 0:
        if errors:
            return (
                models.PoolPhase.ERROR,
                f"discovery failed on {len(errors)} pods and no device is available",
            )
        if total:
            return models.PoolPhase.ERROR, f"none of {total} devices is available"
        return models.PoolPhase.PENDING, "no matching device found yet"
    if available == total and all(fresh) and not errors:
        return models.PoolPhase.READY, f"{available} devices available"
    return (
        models.PoolPhase.PARTIAL,
        f"{available} of {total} devices available, {sum(fresh)}/{len(parsed)} fresh",
    )


def aggregate(
    device: str,
    pods: list[DiscoveryPod],
    previous: models.HSMPoolStatus,
    grace_period: float,
    now: datetime.datetime,
    capacities: Mapping[str, models.DeviceCapacity] | None = None,
    resources: Mapping[str, nodes.NodeResource] | None = None,
    unanswered: Sequence[agentreach.Unanswered] | None = None,
) -> models.HSMPoolStatus:
    """The pool status for device from its discovery pods' reports, its agents' capacity figures and what
    the Nodes say of its resource.

    A report older than grace_period is stale (its pod counts as not fresh and its devices as unavailable);
    a device no report lists any more stays listed, unavailable, until grace_period after it was last seen.
    capacities holds this pass's figures by serial (None: not read this pass, see capacity.attach);
    resources holds each Node's count of the resource by node name (None: not read, see nodes.summarize);
    unanswered the Ready agents that did not answer when their figures were asked (None: not asked, see
    agentreach.condition).
    lastAggregationTime moves only when something else changed, so an idle pool is never rewritten.
    """
    parsed = [_parse(pod, device) for pod in sorted(pods, key=lambda p: p.name)]
    fresh = [p.content is not None and _age(now, p.content.report_time) <= grace_period for p in parsed]
    found = _devices(parsed, previous.aggregated_devices, grace_period, now)
    devices = capacity.attach(found, previous.aggregated_devices, capacities)
    available = sum(1 for d in devices if d.available)
    phase, message = _phase(parsed, fresh, len(devices), available)
    reporting = [
        models.ReportingPod(
            pod_name=p.pod.name,
            node_name=p.content.node_name if p.content else p.pod.node,
            devices_found=len(p.entry.devices) if p.entry else 0,
            last_report_time=p.content.report_time if p.content else None,
            fresh=is_fresh,
        )
        for p, is_fresh in zip(parsed, fresh, strict=True)
    ]
    reports = [
        nodes.NodeReport(
            node=p.content.node_name if p.content else p.pod.node,
            time=p.content.report_time if p.content else None,
            entry=p.entry,
        )
        for p in parsed
    ]
    ready = conditions.ready(
        phase in (models.PoolPhase.READY, models.PoolPhase.PARTIAL), phase.value, message
    )
    status = models.HSMPoolStatus(
        phase=phase,
        total_devices=len(devices),
        available_devices=available,
        aggregated_devices=devices,
        reporting_pods=reporting,
        resource=constants.resource_name(device),
        nodes=nodes.summarize(reports, resources, previous.nodes),
        last_aggregation_time=previous.last_aggregation_time,
        conditions=_set_conditions(
            previous.conditions,
            [
                ready,
                capacity.condition(devices, previous.conditions),
                agentreach.condition(unanswered, previous.conditions),
            ],
            now,
        ),
    )
    if status != previous or previous.last_aggregation_time is None:
        status = status.model_copy(update={"last_aggregation_time": now})
    return status


def manifest(device: str, namespace: str, owner: owners.Owner) -> dict[str, Any]:
    """The device's HSMPool (spec defaults: the grace period comes from the model)."""
    return {
        "apiVersion": owner.api_version,
        "kind": "HSMPool",
        "metadata": {
            "name": pool_name(device),
            "namespace": namespace,
            "labels": owners.labels("pool", device, pool_name(device)),
            "ownerReferences": [owner.reference()],
        },
        "spec": {},
    }


def pool_name(device: str) -> str:
    """The HSMPool of device."""
    return f"{device}-pool"


def _set_conditions(
    previous: list[models.Condition], updates: list[models.Condition], now: datetime.datetime
) -> list[models.Condition]:
    found = previous
    for update in updates:
        found = conditions.set_condition(found, update, now)
    return found
