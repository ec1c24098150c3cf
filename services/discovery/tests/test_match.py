from __future__ import annotations

from hsm_common import models
from hsm_discovery import known, match, usb

PICO = usb.UsbDevice("/sys/a", "/dev/bus/usb/001/015", "20a0", "4230", serial="DC6A33145E23A42A")
SCHSM = usb.UsbDevice("/sys/b", "/dev/bus/usb/001/016", "04e6", "5817", serial="SC1")
MOUSE = usb.UsbDevice("/sys/c", "/dev/bus/usb/001/017", "046d", "c077")
HUB = usb.UsbDevice("/sys/d", "/dev/bus/usb/001/001", "1d6b", "0002")
ALL = [HUB, MOUSE, SCHSM, PICO]


def spec(**discovery: object) -> models.HSMDeviceSpec:
    return models.HSMDeviceSpec.model_validate(
        {
            "deviceType": "Generic",
            "discovery": discovery,
            "pkcs11": {"libraryPath": "/x.so", "pinSecret": {"name": "p", "key": "pin"}},
        }
    )


def test_explicit_ids_match_case_insensitively() -> None:
    chosen = match.select(spec(usb=[{"vendorId": "20A0", "productId": "4230"}]), ALL, frozenset())
    assert chosen == [PICO]


def test_serial_must_match_exactly() -> None:
    lower = spec(usb=[{"vendorId": "20a0", "productId": "4230", "serialNumber": "dc6a33145e23a42a"}])
    exact = spec(usb=[{"vendorId": "20a0", "productId": "4230", "serialNumber": "DC6A33145E23A42A"}])
    assert match.select(lower, ALL, frozenset()) == []
    assert match.select(exact, ALL, frozenset()) == [PICO]


def test_auto_discovery_uses_the_ccid_allowlist() -> None:
    assert match.select(spec(autoDiscovery=True), [MOUSE], frozenset({("046d", "c077")})) == [MOUSE]


def test_auto_discovery_uses_the_known_table_without_a_plist() -> None:
    assert match.select(spec(autoDiscovery=True), ALL, frozenset()) == [PICO, SCHSM]


def test_without_auto_discovery_only_explicit_entries_match() -> None:
    assert match.select(spec(), ALL, frozenset({("046d", "c077")})) == []


def test_max_devices_keeps_the_lowest_serials_whatever_the_scan_order() -> None:
    devices = [
        usb.UsbDevice(f"/sys/{i}", f"/dev/bus/usb/001/{i:03d}", "20a0", "4230", serial=s)
        for i, s in enumerate(["C3", "A1", "B2"])
    ]
    capped = models.HSMDeviceSpec.model_validate(
        {**spec(usb=[{"vendorId": "20a0", "productId": "4230"}]).to_wire(), "maxDevices": 2}
    )
    forward = match.select(capped, devices, frozenset())
    backward = match.select(capped, list(reversed(devices)), frozenset())
    assert [d.serial for d in forward] == ["A1", "B2"]
    assert forward == backward


def test_node_selector_requires_every_label() -> None:
    assert match.node_selected({"hsm": "yes", "zone": "a"}, {"hsm": "yes", "zone": "a", "x": "y"})
    assert not match.node_selected({"hsm": "yes", "zone": "a"}, {"hsm": "yes"})


def test_yubihsm_is_marked_as_not_ccid() -> None:
    assert not known.is_ccid(("1050", "0030"))
    assert known.is_ccid(("20a0", "4230"))
