"""The real CLI scanning hand-written USB devices under ``umockdev-run``, one report per module."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

DEVICES = ["roothub", "pico", "smartcard-hsm", "mouse", "reader"]
PICO_SERIAL = "DC6A33145E23A42A"
PICO_IDS = {"vendorId": "20A0", "productId": "4230"}


def run_once(data: pathlib.Path, tmp: pathlib.Path, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Run ``hsm-discovery --once`` against the test devices and return the report it wrote."""
    (tmp / "devices.json").write_text(json.dumps(objects))
    command = ["umockdev-run"]
    for name in DEVICES:
        command += ["--device", str(data / f"{name}.umockdev")]
    command += [
        "--", sys.executable, "-m", "hsm_discovery", "--once",
        "--report-file", str(tmp / "report.json"),
        "--devices-file", str(tmp / "devices.json"),
        "--ccid-plist", str(data / "Info.plist"),
    ]  # fmt: skip
    env = {**os.environ, "NODE_NAME": "node-a"}
    subprocess.run(command, check=True, timeout=60, env=env, capture_output=True)
    return dict(json.loads((tmp / "report.json").read_text()))


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory,
    data_dir: pathlib.Path,
    make_hsm_device: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    hsm_device = make_hsm_device
    return run_once(
        data_dir,
        tmp_path_factory.mktemp("umockdev"),
        [
            hsm_device("explicit", discovery={"usb": [PICO_IDS]}),
            hsm_device("by-serial", discovery={"usb": [{**PICO_IDS, "serialNumber": PICO_SERIAL}]}),
            hsm_device("wrong-serial", discovery={"usb": [{**PICO_IDS, "serialNumber": "0000"}]}),
            hsm_device("auto", discovery={"autoDiscovery": True}),
            hsm_device("capped", discovery={"autoDiscovery": True}, maxDevices=1),
            hsm_device("bad", discovery={"usb": [{"vendorId": "20a0", "productId": "42"}]}),
        ],
    )


def serials(report: dict[str, Any], name: str) -> list[str]:
    return [d["serialNumber"] for d in report["devices"][name]["devices"]]


def test_explicit_ids_find_the_pico_hsm_at_its_devnode(report: dict[str, Any]) -> None:
    [pico] = report["devices"]["explicit"]["devices"]
    assert (pico["serialNumber"], pico["devicePath"]) == (PICO_SERIAL, "/dev/bus/usb/001/015")
    assert (pico["vendorId"], pico["productId"], pico["product"]) == ("20a0", "4230", "Pico HSM")


def test_serial_selects_the_device_with_that_serial_only(report: dict[str, Any]) -> None:
    assert serials(report, "by-serial") == [PICO_SERIAL]
    assert serials(report, "wrong-serial") == []


def test_auto_discovery_finds_known_hsms_and_plist_readers_only(report: dict[str, Any]) -> None:
    found = {(d["vendorId"], d["productId"]) for d in report["devices"]["auto"]["devices"]}
    assert found == {("20a0", "4230"), ("04e6", "5817"), ("08e6", "3437")}


def test_max_devices_keeps_the_lowest_serial(report: dict[str, Any]) -> None:
    assert serials(report, "capped") == [PICO_SERIAL]


def test_device_without_udev_properties_is_read_from_sysfs(report: dict[str, Any]) -> None:
    [schsm] = [d for d in report["devices"]["auto"]["devices"] if d["productId"] == "5817"]
    assert (schsm["vendorId"], schsm["serialNumber"]) == ("04e6", "SCHSM0000001")
    assert schsm["devicePath"] == "/dev/bus/usb/001/016"


def test_malformed_hsm_device_is_an_error_for_that_device_only(report: dict[str, Any]) -> None:
    assert report["devices"]["bad"]["status"] == "error"
    assert "productId" in report["devices"]["bad"]["error"]
    assert report["devices"]["explicit"]["status"] == "ok"


def test_report_names_the_node(report: dict[str, Any]) -> None:
    assert report["nodeName"] == "node-a"
