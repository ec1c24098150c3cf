"""umockdev descriptions of a Pico HSM (USB 20a0:4230) with a chosen serial number."""

VENDOR_ID = "20a0"
PRODUCT_ID = "4230"
SYS_PATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"
"""Where the device appears in its node's testbed (each node has its own testbed, so one path serves all)."""


def description(serial: str, devnum: int = 15) -> str:
    """The device description of a Pico HSM whose USB serial is ``serial`` (discovery reports it)."""
    return "\n".join(
        (
            f"P: {SYS_PATH.removeprefix('/sys')}",
            f"N: bus/usb/001/{devnum:03d}",
            f"E: DEVNAME=/dev/bus/usb/001/{devnum:03d}",
            "E: DEVTYPE=usb_device",
            "E: SUBSYSTEM=usb",
            f"E: ID_VENDOR_ID={VENDOR_ID}",
            f"E: ID_MODEL_ID={PRODUCT_ID}",
            f"E: ID_SERIAL_SHORT={serial}",
            "E: BUSNUM=001",
            f"E: DEVNUM={devnum:03d}",
            f"A: idVendor={VENDOR_ID}",
            f"A: idProduct={PRODUCT_ID}",
            f"A: serial={serial}",
            "A: manufacturer=Pol Henarejos",
            "A: product=Pico HSM",
            "A: busnum=1",
            f"A: devnum={devnum}",
            f"A: dev=189:{devnum - 1}",
            "",
        )
    )
