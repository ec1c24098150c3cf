"""The discovery report a discovery pod writes into its own annotation (``hsm.j5t.io/device-report``)."""

from __future__ import annotations

import datetime
import enum

import pydantic

from . import models


class ReportStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"


class ReportedDevice(models.Model):
    """One USB device found on the node."""

    device_path: str
    """Device node, ``/dev/bus/usb/BBB/DDD``."""
    serial_number: str
    vendor_id: str
    product_id: str
    manufacturer: str = ""
    product: str = ""
    bus_path: str = ""
    """sysfs path of the USB device."""
    ccid: bool = True
    """False for devices that need their own driver instead of pcscd/libccid (YubiHSM 2)."""
    available: bool
    last_seen: datetime.datetime


class PluginStatus(models.Model):
    """How this node's kubelet device plugin for one HSMDevice stands."""

    resource: str
    """The extended resource, ``hsm.j5t.io/<HSMDevice>``."""
    registered: bool
    """The kubelet accepted the plugin's registration (and has not restarted since)."""
    healthy: int = 0
    """Devices the plugin offers the kubelet as Healthy."""
    error: str | None = None
    """Why the plugin is not registered or a device could not be allocated (the last failure)."""


class DeviceEntry(models.Model):
    """What this node found for one HSMDevice."""

    devices: list[ReportedDevice] = pydantic.Field(default_factory=list)
    status: ReportStatus = ReportStatus.OK
    error: str | None = None
    plugin: PluginStatus | None = None
    """The node's device plugin for this HSMDevice; None where discovery serves none."""


class DeviceReport(models.Model):
    """The whole annotation: one entry per HSMDevice, keyed by HSMDevice name."""

    node_name: str
    report_time: datetime.datetime
    """When the content last changed or the last heartbeat, whichever is later."""
    devices: dict[str, DeviceEntry] = pydantic.Field(default_factory=dict)
