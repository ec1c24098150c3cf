"""What a device plugin offers the kubelet and what one container gets: pure functions, no I/O."""

from __future__ import annotations

import dataclasses
import pathlib
import posixpath
from collections.abc import Mapping, Sequence

from hsm_common import report
from hsm_discovery import errors

from . import config

PERMISSIONS = "rw"
"""pcscd (libccid through libusb) reads and writes the usbfs node; it never creates device nodes."""


@dataclasses.dataclass(frozen=True)
class PluginDevice:
    """One USB device as the kubelet sees it."""

    id: str
    device_path: str
    """The usbfs node, ``/dev/bus/usb/BBB/DDD``; empty when discovery could not tell the bus position."""
    healthy: bool


@dataclasses.dataclass(frozen=True)
class DeviceNode:
    host_path: str
    container_path: str


@dataclasses.dataclass(frozen=True)
class Allocation:
    """What one container gets: device nodes, read-write bind mounts (same path inside), variables."""

    devices: tuple[DeviceNode, ...]
    mounts: tuple[str, ...]
    env: Mapping[str, str]


def socket_name(hsm_device: str) -> str:
    """The file name of an HSMDevice's plugin socket in the device-plugin dir."""
    return f"hsm-{hsm_device}.sock"


def device_id(device: report.ReportedDevice) -> str:
    """The ID the kubelet knows a device by: its serial number, which agents find their token by.

    A device without one is named after its USB port (the sysfs name, ``1-3``), which survives a replug
    into the same port.
    """
    return device.serial_number or f"usb-{pathlib.PurePosixPath(device.bus_path).name}"


def offered(entry: report.DeviceEntry) -> tuple[PluginDevice, ...]:
    """The devices of one report entry, by ID: present ones Healthy, removed ones Unhealthy.

    Healthy also needs a device node, since there is nothing else to hand a container. The entry lists
    present devices first, so of two devices with one ID the present one is offered.
    """
    found: dict[str, PluginDevice] = {}
    for device in entry.devices:
        key = device_id(device)
        if key not in found:
            healthy = device.available and bool(device.device_path)
            found[key] = PluginDevice(id=key, device_path=device.device_path, healthy=healthy)
    return tuple(sorted(found.values(), key=lambda d: d.id))


def host_path(node_root: str, device_path: str) -> str:
    """Where the container runtime finds device_path on the node."""
    return posixpath.join(node_root, device_path.lstrip("/"))


def allocate(
    requested: Sequence[str], devices: Sequence[PluginDevice], settings: config.Config
) -> Allocation:
    """What a container that asked for the requested IDs gets; raises errors.AllocationRefused.

    It gets the nodes of every healthy device of the HSMDevice on this node, not only the requested ones:
    the kubelet, not the pod, picks which IDs a container gets, so the device its agent is pinned to (by
    serial) need not be among them. The devices of one HSMDevice share its PIN and trust domain, so an
    agent allowed one of them gains nothing it was not meant to have from seeing the others.
    """
    by_id = {d.id: d for d in devices}
    for key in requested:
        device = by_id.get(key)
        if device is None:
            known = ", ".join(sorted(by_id)) or "none"
            raise errors.UnknownDevice(f"device {key!r} is not offered on this node (offered: {known})")
        if not device.healthy:
            raise errors.DeviceUnhealthy(f"device {key!r} is unplugged or has no device node")
    nodes = tuple(
        DeviceNode(host_path=host_path(settings.node_root, d.device_path), container_path=d.device_path)
        for d in devices
        if d.healthy
    )
    return Allocation(devices=nodes, mounts=settings.mounts, env=dict(settings.env))
