"""umockdev descriptions of USB HSMs (a Pico HSM, a SmartCard-HSM) with a chosen serial number."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Model:
    """What a kind of USB HSM shows udev, and where it sits in its node's testbed."""

    vendor_id: str
    product_id: str
    manufacturer: str
    product: str
    sys_path: str
    """Each node has its own testbed, so one path per model serves all nodes."""
    devnum: int
    """Its device number on bus 1: the device node is /dev/bus/usb/001/<devnum>, numbers 189:<devnum - 1>."""

    def usb_ids(self) -> dict[str, str]:
        """An HSMDevice's ``discovery.usb`` entry that matches this model."""
        return {"vendorId": self.vendor_id, "productId": self.product_id}


PICO_HSM = Model(
    "20a0", "4230", "Pol Henarejos", "Pico HSM", "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3", 15
)
SMARTCARD_HSM = Model(
    "04e6",
    "5816",
    "Identiv",
    "uTrust 3512 SAM slot Token",
    "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4",
    16,
)
"""A SmartCard-HSM USB stick: the card in a CCID token reader."""


def description(model: Model, serial: str) -> str:
    """The device description of a ``model`` whose USB serial is ``serial`` (discovery reports it)."""
    devnum = model.devnum
    return "\n".join(
        (
            f"P: {model.sys_path.removeprefix('/sys')}",
            f"N: bus/usb/001/{devnum:03d}",
            f"E: DEVNAME=/dev/bus/usb/001/{devnum:03d}",
            "E: DEVTYPE=usb_device",
            "E: SUBSYSTEM=usb",
            f"E: ID_VENDOR_ID={model.vendor_id}",
            f"E: ID_MODEL_ID={model.product_id}",
            f"E: ID_SERIAL_SHORT={serial}",
            "E: BUSNUM=001",
            f"E: DEVNUM={devnum:03d}",
            f"A: idVendor={model.vendor_id}",
            f"A: idProduct={model.product_id}",
            f"A: serial={serial}",
            f"A: manufacturer={model.manufacturer}",
            f"A: product={model.product}",
            "A: busnum=1",
            f"A: devnum={devnum}",
            f"A: dev=189:{devnum - 1}",
            "",
        )
    )
