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


class DeviceEntry(models.Model):
    """What this node found for one HSMDevice."""

    devices: list[ReportedDevice] = pydantic.Field(default_factory=list)
    status: ReportStatus = ReportStatus.OK
    error: str | None = None


class DeviceReport(models.Model):
    """The whole annotation: one entry per HSMDevice, keyed by HSMDevice name."""

    node_name: str
    report_time: datetime.datetime
    """When the content last changed or the last heartbeat, whichever is later."""
    devices: dict[str, DeviceEntry] = pydantic.Field(default_factory=dict)
