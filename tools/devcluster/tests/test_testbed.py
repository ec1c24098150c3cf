"""A node's hotplug testbed: devices plugged in and out through the driver are seen by wrapped processes."""

import os
import pathlib
import stat
import subprocess
from collections.abc import Iterator

import pytest

from devcluster import process, testbed

HUB = "/sys/devices/pci0000:00/0000:00:14.0/usb1"
DEVICE = f"{HUB}/1-3"
DESCRIPTION = f"""P: {DEVICE.removeprefix("/sys")}
N: bus/usb/001/015
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
E: ID_VENDOR_ID=20a0
E: ID_MODEL_ID=4230
E: ID_SERIAL_SHORT=TESTSERIAL42
A: idVendor=20a0
A: idProduct=4230
A: serial=TESTSERIAL42
"""


@pytest.fixture
def bed(tmp_path: pathlib.Path) -> Iterator[testbed.Testbed]:
    driver = testbed.start_driver(tmp_path, "node-a", timeout=20)
    try:
        yield testbed.Testbed(tmp_path, "node-a")
    finally:
        process.stop(driver)


def _serial_seen_by_a_pod(bed: testbed.Testbed) -> str:
    env = {**os.environ, "UMOCKDEV_DIR": str(testbed.root(bed.run_dir, bed.node))}
    result = subprocess.run(
        ["umockdev-wrapper", "cat", f"{DEVICE}/serial"], env=env, capture_output=True, text=True, timeout=20
    )
    return result.stdout.strip()


def test_a_plugged_device_is_seen_by_wrapped_processes(bed: testbed.Testbed, tmp_path: pathlib.Path) -> None:
    description = tmp_path / "pico.umockdev"
    description.write_text(DESCRIPTION)
    assert bed.add(description) == [DEVICE]
    assert _serial_seen_by_a_pod(bed) == "TESTSERIAL42"


def test_an_unplugged_device_is_gone(bed: testbed.Testbed, tmp_path: pathlib.Path) -> None:
    description = tmp_path / "pico.umockdev"
    description.write_text(DESCRIPTION)
    bed.add(description)
    bed.remove(DEVICE)
    assert not bed.present(DEVICE)
    assert _serial_seen_by_a_pod(bed) == ""


def test_removing_an_absent_device_fails(bed: testbed.Testbed) -> None:
    with pytest.raises(testbed.TestbedError, match="no device"):
        bed.remove(DEVICE)


def test_commands_fail_fast_without_a_driver(tmp_path: pathlib.Path) -> None:
    driver = testbed.start_driver(tmp_path, "node-b", timeout=20)
    process.stop(driver)
    with pytest.raises(testbed.TestbedError, match="not running"):
        testbed.Testbed(tmp_path, "node-b").remove(DEVICE)


def test_a_plugged_device_gets_a_real_device_node_that_goes_when_unplugged(
    bed: testbed.Testbed, tmp_path: pathlib.Path
) -> None:
    description = tmp_path / "pico.umockdev"
    description.write_text(DESCRIPTION + "E: DEVNAME=/dev/bus/usb/001/015\nA: dev=189:14\n")
    bed.add(description)
    node = testbed.devnodes_dir(bed.run_dir, bed.node) / "dev/bus/usb/001/015"
    found = node.stat()
    assert stat.S_ISCHR(found.st_mode)
    assert (os.major(found.st_rdev), os.minor(found.st_rdev)) == (189, 14)
    bed.remove(DEVICE)
    assert not node.exists()


def test_the_device_node_of_a_description() -> None:
    assert testbed.device_node(DESCRIPTION) is None
    found = testbed.device_node(DESCRIPTION + "E: DEVNAME=/dev/bus/usb/001/015\nA: dev=189:14\n")
    assert found == testbed.DeviceNode("/dev/bus/usb/001/015", 189, 14)
