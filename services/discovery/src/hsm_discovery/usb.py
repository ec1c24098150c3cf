"""The USB device record discovery works with, independent of how it was found."""

from __future__ import annotations

import dataclasses


def normalize_id(raw: str) -> str:
    """A USB vendor/product ID as 4 lower-case hex digits (``0x04E6`` and ``04e6`` both become ``04e6``)."""
    text = raw.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text.zfill(4)


@dataclasses.dataclass(frozen=True)
class UsbDevice:
    """One USB device as seen on this node."""

    sys_path: str
    """sysfs path, unique while the device is plugged in."""
    device_path: str
    """Device node, ``/dev/bus/usb/BBB/DDD``; empty when neither udev nor sysfs tell the bus position."""
    vendor_id: str
    """4 lower-case hex digits."""
    product_id: str
    """4 lower-case hex digits."""
    serial: str = ""
    manufacturer: str = ""
    product: str = ""

    @property
    def ids(self) -> tuple[str, str]:
        """(vendor ID, product ID)."""
        return (self.vendor_id, self.product_id)

    @property
    def identity(self) -> str:
        """What stays the same when the device is unplugged and plugged back in (maybe on another port)."""
        if self.serial:
            return f"{self.vendor_id}:{self.product_id}:{self.serial}"
        return self.sys_path


def device_node(bus: int, dev: int) -> str:
    """The usbfs device node of bus number bus and device number dev."""
    return f"/dev/bus/usb/{bus:03d}/{dev:03d}"
