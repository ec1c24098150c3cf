"""Enumerates USB devices with libudev (one of the two modules that import pyudev)."""

from __future__ import annotations

import logging
import re

import pyudev  # type: ignore[import-untyped]

from . import usb

log = logging.getLogger(__name__)

_HEX_ID = re.compile(r"^(0x)?[0-9a-fA-F]{1,4}$")


def _attribute(device: pyudev.Device, name: str) -> str:
    """A sysfs attribute as text, or "" when it is missing or unreadable (the latter is logged)."""
    try:
        raw = device.attributes.get(name)
    except (OSError, UnicodeDecodeError) as err:
        log.warning(
            "sysfs_attribute_unreadable",
            extra={"sys_path": device.sys_path, "attribute": name, "error": str(err)},
        )
        return ""
    if raw is None:
        return ""
    try:
        return bytes(raw).decode("utf-8", errors="replace").strip()
    except TypeError:
        return str(raw).strip()


def _field(device: pyudev.Device, prop: str, attribute: str) -> str:
    """A udev property, falling back to the sysfs attribute on nodes without a udev database."""
    value = device.properties.get(prop)
    return value.strip() if value else _attribute(device, attribute)


def _device_path(device: pyudev.Device) -> str:
    if device.device_node:
        return str(device.device_node)
    bus = _field(device, "BUSNUM", "busnum")
    dev = _field(device, "DEVNUM", "devnum")
    if bus.isdigit() and dev.isdigit():
        return usb.device_node(int(bus), int(dev))
    return ""


def from_udev(device: pyudev.Device) -> usb.UsbDevice | None:
    """The UsbDevice behind a udev device, or None when it has no usable vendor/product IDs."""
    vendor = _field(device, "ID_VENDOR_ID", "idVendor")
    product = _field(device, "ID_MODEL_ID", "idProduct")
    if not _HEX_ID.match(vendor) or not _HEX_ID.match(product):
        log.warning("usb_device_without_ids", extra={"sys_path": device.sys_path})
        return None
    return usb.UsbDevice(
        sys_path=device.sys_path,
        device_path=_device_path(device),
        vendor_id=usb.normalize_id(vendor),
        product_id=usb.normalize_id(product),
        serial=_field(device, "ID_SERIAL_SHORT", "serial"),
        manufacturer=_attribute(device, "manufacturer"),
        product=_attribute(device, "product"),
    )


def scan(context: pyudev.Context) -> list[usb.UsbDevice]:
    """Every USB device (not interface) on this node, root hubs included; the caller filters."""
    found = []
    # One property filter only: libudev ORs property filters, so narrowing by IDs here would not narrow.
    for device in context.list_devices(subsystem="usb", DEVTYPE="usb_device"):
        record = from_udev(device)
        if record is not None:
            found.append(record)
    return found


def new_context() -> pyudev.Context:
    """A libudev context for scan and monitor.Monitor."""
    return pyudev.Context()
