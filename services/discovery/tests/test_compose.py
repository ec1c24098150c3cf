from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from hsm_common import report
from hsm_discovery import compose, inventory, targets, usb

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
PICO = usb.UsbDevice("/sys/1-3", "/dev/bus/usb/001/015", "20a0", "4230", serial="DC6A33145E23A42A")
SCHSM = usb.UsbDevice("/sys/1-4", "/dev/bus/usb/001/016", "04e6", "5817", serial="SC1")
PICO_IDS = {"usb": [{"vendorId": "20a0", "productId": "4230"}]}

MakeDevice = Callable[..., dict[str, Any]]


def seen(*devices: usb.UsbDevice) -> inventory.Inventory:
    return inventory.update(inventory.Inventory(), devices, T0, DAY)


def test_overlapping_hsm_devices_each_get_their_own_entry(make_hsm_device: MakeDevice) -> None:
    objects = [
        make_hsm_device("explicit", discovery=PICO_IDS),
        make_hsm_device("auto", discovery={"autoDiscovery": True}),
    ]
    rep = compose.build("node-a", T0, targets.for_node(objects, {}), seen(PICO, SCHSM), frozenset())
    assert [d.serial_number for d in rep.devices["explicit"].devices] == ["DC6A33145E23A42A"]
    assert [d.serial_number for d in rep.devices["auto"].devices] == ["DC6A33145E23A42A", "SC1"]


def test_malformed_hsm_device_gets_an_error_entry_alone(make_hsm_device: MakeDevice) -> None:
    objects = [
        make_hsm_device("bad", discovery={"usb": [{"vendorId": "20a0x", "productId": "4230"}]}),
        make_hsm_device("good", discovery=PICO_IDS),
    ]
    rep = compose.build("node-a", T0, targets.for_node(objects, {}), seen(PICO), frozenset())
    assert rep.devices["bad"].status == report.ReportStatus.ERROR
    assert "vendorId" in (rep.devices["bad"].error or "")
    assert rep.devices["good"].status == report.ReportStatus.OK
    assert len(rep.devices["good"].devices) == 1


def test_node_selector_leaves_out_hsm_devices_for_other_nodes(make_hsm_device: MakeDevice) -> None:
    objects = [
        make_hsm_device("here", discovery=PICO_IDS, nodeSelector={"hsm": "pico"}),
        make_hsm_device("elsewhere", discovery=PICO_IDS, nodeSelector={"hsm": "other"}),
    ]
    assert [t.name for t in targets.for_node(objects, {"hsm": "pico"})] == ["here"]


def test_removed_device_is_reported_unavailable_with_last_seen(make_hsm_device: MakeDevice) -> None:
    later = T0 + datetime.timedelta(seconds=9)
    gone = inventory.update(seen(PICO), [], later, DAY)
    chosen = targets.for_node([make_hsm_device("pico", discovery=PICO_IDS)], {})
    [device] = compose.build("node-a", later, chosen, gone, frozenset()).devices["pico"].devices
    assert (device.available, device.last_seen) == (False, later)


def test_removed_devices_do_not_count_against_max_devices(make_hsm_device: MakeDevice) -> None:
    other = usb.UsbDevice("/sys/1-5", "/dev/bus/usb/001/020", "20a0", "4230", serial="ZZ")
    gone = inventory.update(seen(PICO), [other], T0, DAY)
    chosen = targets.for_node([make_hsm_device("pico", discovery=PICO_IDS, maxDevices=1)], {})
    devices = compose.build("node-a", T0, chosen, gone, frozenset()).devices["pico"].devices
    assert [(d.serial_number, d.available) for d in devices] == [("ZZ", True), ("DC6A33145E23A42A", False)]


def test_content_key_ignores_the_ticking_times(make_hsm_device: MakeDevice) -> None:
    chosen = targets.for_node([make_hsm_device("pico", discovery=PICO_IDS)], {})
    first = compose.build("node-a", T0, chosen, seen(PICO), frozenset())
    later = compose.build("node-a", T0 + DAY, chosen, seen(PICO), frozenset())
    empty = compose.build("node-a", T0, chosen, seen(), frozenset())
    assert compose.content_key(first) == compose.content_key(later)
    assert compose.content_key(first) != compose.content_key(empty)


def test_report_wire_format_is_camel_case(make_hsm_device: MakeDevice) -> None:
    chosen = targets.for_node([make_hsm_device("pico", discovery=PICO_IDS)], {})
    wire = compose.build("node-a", T0, chosen, seen(PICO), frozenset()).to_wire()
    assert wire["nodeName"] == "node-a"
    assert wire["devices"]["pico"]["devices"][0]["devicePath"] == "/dev/bus/usb/001/015"
    assert report.DeviceReport.model_validate(wire).devices["pico"].devices[0].serial_number == PICO.serial


def test_plugin_statuses_join_their_entries(make_hsm_device: MakeDevice) -> None:
    objects = [make_hsm_device("pico", discovery=PICO_IDS), make_hsm_device("other", discovery=PICO_IDS)]
    rep = compose.build("node-a", T0, targets.for_node(objects, {}), seen(PICO), frozenset())
    status = report.PluginStatus(resource="hsm.j5t.io/pico", registered=True, healthy=1)
    joined = compose.with_plugins(rep, {"pico": status})
    assert (joined.devices["pico"].plugin, joined.devices["other"].plugin) == (status, None)
    assert joined.devices["pico"].devices == rep.devices["pico"].devices


def test_plugin_status_changes_the_content_key(make_hsm_device: MakeDevice) -> None:
    rep = compose.build("node-a", T0, targets.for_node([make_hsm_device("pico")], {}), seen(), frozenset())
    status = report.PluginStatus(resource="hsm.j5t.io/pico", registered=False, error="no kubelet")
    registered = status.model_copy(update={"registered": True, "error": None})
    keys = {compose.content_key(compose.with_plugins(rep, {"pico": s})) for s in (status, registered)}
    assert len(keys) == 2


def test_a_pod_of_one_hsm_devices_daemonset_reports_that_device_alone(make_hsm_device: MakeDevice) -> None:
    objects = [make_hsm_device("pico", discovery=PICO_IDS), make_hsm_device("schsm", discovery=PICO_IDS)]
    assert [t.name for t in targets.for_node(objects, {}, only="schsm")] == ["schsm"]
    assert [t.name for t in targets.for_node(objects, {})] == ["pico", "schsm"]
