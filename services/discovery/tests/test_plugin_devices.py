"""What the device plugins offer and allocate, and their flags: pure functions."""

from __future__ import annotations

import datetime
import pathlib

import pytest

from hsm_common import report
from hsm_discovery import errors
from hsm_discovery.plugin import config, devices

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
SETTINGS = config.Config(plugin_dir=pathlib.Path("/unused"))


def reported(
    serial: str, devnum: int, available: bool = True, device_path: str | None = None
) -> report.ReportedDevice:
    return report.ReportedDevice(
        device_path=f"/dev/bus/usb/001/{devnum:03d}" if device_path is None else device_path,
        serial_number=serial,
        vendor_id="20a0",
        product_id="4230",
        bus_path=f"/sys/devices/pci0000:00/0000:00:14.0/usb1/1-{devnum}",
        available=available,
        last_seen=T0,
    )


def plugged(serial: str, devnum: int) -> devices.PluginDevice:
    return devices.PluginDevice(id=serial, device_path=f"/dev/bus/usb/001/{devnum:03d}", healthy=True)


def test_devices_are_offered_by_serial_and_health() -> None:
    entry = report.DeviceEntry(devices=[reported("B2", 16), reported("A1", 15, available=False)])
    assert devices.offered(entry) == (
        devices.PluginDevice(id="A1", device_path="/dev/bus/usb/001/015", healthy=False),
        devices.PluginDevice(id="B2", device_path="/dev/bus/usb/001/016", healthy=True),
    )


def test_device_without_serial_is_named_after_its_port() -> None:
    [offered] = devices.offered(report.DeviceEntry(devices=[reported("", 3)]))
    assert offered.id == "usb-1-3"


def test_device_without_device_node_is_unhealthy() -> None:
    [offered] = devices.offered(report.DeviceEntry(devices=[reported("A1", 15, device_path="")]))
    assert not offered.healthy


def test_present_device_wins_its_id_over_a_removed_one() -> None:
    entry = report.DeviceEntry(devices=[reported("A1", 17), reported("A1", 15, available=False)])
    assert devices.offered(entry) == (plugged("A1", 17),)


def test_allocation_holds_every_healthy_device_of_the_hsm_device() -> None:
    offered = (
        plugged("A1", 15),
        plugged("B2", 16),
        devices.PluginDevice("C3", "/dev/bus/usb/001/017", False),
    )
    allocation = devices.allocate(["B2"], offered, SETTINGS)
    assert allocation.devices == (
        devices.DeviceNode(host_path="/dev/bus/usb/001/015", container_path="/dev/bus/usb/001/015"),
        devices.DeviceNode(host_path="/dev/bus/usb/001/016", container_path="/dev/bus/usb/001/016"),
    )


def test_node_root_prefixes_the_host_path_only() -> None:
    settings = config.Config(plugin_dir=SETTINGS.plugin_dir, node_root="/var/lib/devnodes")
    [node] = devices.allocate(["A1"], (plugged("A1", 15),), settings).devices
    assert (node.host_path, node.container_path) == (
        "/var/lib/devnodes/dev/bus/usb/001/015",
        "/dev/bus/usb/001/015",
    )


def test_allocation_carries_the_configured_mounts_and_env() -> None:
    settings = config.Config(plugin_dir=SETTINGS.plugin_dir, mounts=("/a", "/b"), env={"X": "1"})
    allocation = devices.allocate(["A1"], (plugged("A1", 15),), settings)
    assert (allocation.mounts, dict(allocation.env)) == (("/a", "/b"), {"X": "1"})


def test_unknown_device_is_refused_naming_what_is_offered() -> None:
    with pytest.raises(errors.UnknownDevice, match=r"'Z9' is not offered on this node \(offered: A1\)"):
        devices.allocate(["A1", "Z9"], (plugged("A1", 15),), SETTINGS)


def test_unhealthy_device_is_refused() -> None:
    with pytest.raises(errors.DeviceUnhealthy, match="'A1' is unplugged"):
        devices.allocate(["A1"], (devices.PluginDevice("A1", "/dev/bus/usb/001/015", False),), SETTINGS)


def test_socket_is_named_after_the_hsm_device() -> None:
    assert devices.socket_name("pico") == "hsm-pico.sock"


def test_mounts_are_absolute_normalised_and_unique() -> None:
    assert config.parse_mounts(" /a/b/ , /c,,/a/b") == ("/a/b", "/c")
    assert config.parse_mounts("") == ()


def test_relative_mount_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an absolute path"):
        config.parse_mounts("/a,b")


def test_env_keeps_equals_signs_in_values() -> None:
    assert config.parse_env("A=1, B_2=x=y ,") == {"A": "1", "B_2": "x=y"}


@pytest.mark.parametrize("text", ["A", "=1", "1A=2", "A-B=1"])
def test_malformed_env_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid variable"):
        config.parse_env(text)


def test_env_error_names_the_variable_but_not_its_value() -> None:
    with pytest.raises(ValueError, match="A-B") as err:
        config.parse_env("A-B=hunter2")
    assert "hunter2" not in str(err.value)
