"""Which USB devices belong to an HSMDevice on this node: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hsm_common import models

from . import known, usb


def node_selected(node_selector: Mapping[str, str], node_labels: Mapping[str, str]) -> bool:
    """Whether a node with node_labels is one the HSMDevice's nodeSelector picks (empty picks every node)."""
    return all(node_labels.get(key) == value for key, value in node_selector.items())


def matches_entry(entry: models.USBDeviceMatch, device: usb.UsbDevice) -> bool:
    """Whether device is the one an explicit ``usb[]`` entry names: IDs case-insensitive, serial exact."""
    if usb.normalize_id(entry.vendor_id) != device.vendor_id:
        return False
    if usb.normalize_id(entry.product_id) != device.product_id:
        return False
    return entry.serial_number is None or entry.serial_number == device.serial


def matches(
    discovery: models.DiscoverySpec, device: usb.UsbDevice, ccid_allowlist: frozenset[tuple[str, str]]
) -> bool:
    """Whether device matches an explicit entry or, with autoDiscovery, libccid's list or the known HSMs."""
    if any(matches_entry(entry, device) for entry in discovery.usb):
        return True
    if not discovery.auto_discovery:
        return False
    return device.ids in ccid_allowlist or device.ids in known.KNOWN


def select(
    spec: models.HSMDeviceSpec,
    devices: Iterable[usb.UsbDevice],
    ccid_allowlist: frozenset[tuple[str, str]],
) -> list[usb.UsbDevice]:
    """The devices of spec on this node in serial order, at most maxDevices of them.

    Ordering by serial (then sysfs path for devices without one) makes the cut independent of the order
    the kernel enumerated the devices in, so every rescan keeps the same devices.
    """
    found = sorted(
        (d for d in devices if matches(spec.discovery, d, ccid_allowlist)),
        key=lambda d: (d.serial == "", d.serial, d.sys_path),
    )
    if spec.max_devices is not None:
        return found[: spec.max_devices]
    return found
