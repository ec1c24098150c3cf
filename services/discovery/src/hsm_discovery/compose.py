"""Builds the device report from what was seen and what was asked for: pure functions, no I/O."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping

from hsm_common import report

from . import inventory, known, match, targets, usb


def _reported(device: usb.UsbDevice, available: bool, last_seen: datetime.datetime) -> report.ReportedDevice:
    return report.ReportedDevice(
        device_path=device.device_path,
        serial_number=device.serial,
        vendor_id=device.vendor_id,
        product_id=device.product_id,
        manufacturer=device.manufacturer,
        product=device.product,
        bus_path=device.sys_path,
        ccid=known.is_ccid(device.ids),
        available=available,
        last_seen=last_seen,
    )


def entry(
    target: targets.Target,
    seen: inventory.Inventory,
    ccid_allowlist: frozenset[tuple[str, str]],
    now: datetime.datetime,
) -> report.DeviceEntry:
    """The report entry of one HSMDevice: its present devices (capped by maxDevices) then its removed ones.

    Removed devices do not count against maxDevices: a device that is gone must not keep a present one out.
    """
    if target.spec is None:
        return report.DeviceEntry(status=report.ReportStatus.ERROR, error=target.error or "invalid HSMDevice")
    present = match.select(target.spec, seen.present(), ccid_allowlist)
    gone = sorted(
        (s for s in seen.removed() if match.matches(target.spec.discovery, s.device, ccid_allowlist)),
        key=lambda s: (s.device.serial, s.device.sys_path),
    )
    devices = [_reported(d, True, now) for d in present]
    devices += [_reported(s.device, False, s.last_seen) for s in gone]
    return report.DeviceEntry(devices=devices)


def build(
    node_name: str,
    now: datetime.datetime,
    chosen: Iterable[targets.Target],
    seen: inventory.Inventory,
    ccid_allowlist: frozenset[tuple[str, str]],
) -> report.DeviceReport:
    """The whole report at now: one entry per HSMDevice in chosen, present devices last seen now."""
    return report.DeviceReport(
        node_name=node_name,
        report_time=now,
        devices={t.name: entry(t, seen, ccid_allowlist, now) for t in chosen},
    )


def with_plugins(rep: report.DeviceReport, plugins: Mapping[str, report.PluginStatus]) -> report.DeviceReport:
    """rep with each entry's device plugin status from plugins (entries without one keep None)."""
    devices = {
        name: entry.model_copy(update={"plugin": plugins.get(name)}) for name, entry in rep.devices.items()
    }
    return rep.model_copy(update={"devices": devices})


def content_key(rep: report.DeviceReport) -> str:
    """What must change for a new report to be worth a patch: everything but the times that only tick."""
    wire = rep.to_wire()
    wire.pop("reportTime", None)
    for item in wire["devices"].values():
        for device in item.get("devices", []):
            if device["available"]:
                device.pop("lastSeen", None)
    return json.dumps(wire, sort_keys=True)
