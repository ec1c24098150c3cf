import datetime

from hsm_common import models, report
from hsm_manager.decide import nodes, pool

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
GRACE = 300.0
EMPTY = models.HSMPoolStatus()


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def found(serial: str, seen: float = 1, available: bool = True) -> report.ReportedDevice:
    return report.ReportedDevice(
        device_path="/dev/bus/usb/001/002",
        serial_number=serial,
        vendor_id="20a0",
        product_id="4230",
        available=available,
        last_seen=ago(seen),
    )


def pod(
    name: str, node: str, devices: list[report.ReportedDevice], age: float = 1, device: str = "hsm"
) -> pool.DiscoveryPod:
    content = report.DeviceReport(
        node_name=node, report_time=ago(age), devices={device: report.DeviceEntry(devices=devices)}
    )
    return pool.DiscoveryPod(name, node, content.model_dump_json())


def test_no_discovery_pods_is_pending() -> None:
    status = pool.aggregate("hsm", [], EMPTY, GRACE, NOW)
    assert status.phase == models.PoolPhase.PENDING


def test_pods_without_reports_are_aggregating() -> None:
    status = pool.aggregate("hsm", [pool.DiscoveryPod("d-1", "n1", None)], EMPTY, GRACE, NOW)
    assert status.phase == models.PoolPhase.AGGREGATING


def test_all_devices_available_on_fresh_reports_is_ready() -> None:
    pods = [pod("d-1", "n1", [found("A")]), pod("d-2", "n2", [found("B")])]
    status = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW)
    assert (status.phase, status.total_devices, status.available_devices) == (models.PoolPhase.READY, 2, 2)
    assert [d.node_name for d in status.aggregated_devices] == ["n1", "n2"]


def test_stale_report_marks_pod_not_fresh_and_pool_partial() -> None:
    pods = [pod("d-1", "n1", [found("A")]), pod("d-2", "n2", [found("B", seen=100)], age=GRACE + 1)]
    status = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW)
    assert [p.fresh for p in status.reporting_pods] == [True, False]
    assert status.phase == models.PoolPhase.PARTIAL
    assert {d.serial_number: d.available for d in status.aggregated_devices} == {"A": True, "B": False}


def test_only_stale_reports_is_error() -> None:
    status = pool.aggregate("hsm", [pod("d-1", "n1", [found("A")], age=GRACE + 1)], EMPTY, GRACE, NOW)
    assert status.phase == models.PoolPhase.ERROR


def test_other_devices_entries_are_ignored() -> None:
    status = pool.aggregate("hsm", [pod("d-1", "n1", [found("A")], device="other")], EMPTY, GRACE, NOW)
    assert status.total_devices == 0


def test_vanished_device_stays_unavailable_within_grace() -> None:
    before = pool.aggregate("hsm", [pod("d-1", "n1", [found("A"), found("B")])], EMPTY, GRACE, NOW)
    after = pool.aggregate(
        "hsm", [pod("d-1", "n1", [found("A")])], before, GRACE, NOW + datetime.timedelta(seconds=60)
    )
    assert {d.serial_number: d.available for d in after.aggregated_devices} == {"A": True, "B": False}
    assert after.phase == models.PoolPhase.PARTIAL


def test_vanished_device_is_dropped_after_grace() -> None:
    before = pool.aggregate("hsm", [pod("d-1", "n1", [found("A"), found("B")])], EMPTY, GRACE, NOW)
    later = NOW + datetime.timedelta(seconds=GRACE + 5)
    fresh_pod = pool.DiscoveryPod(
        "d-1",
        "n1",
        report.DeviceReport(
            node_name="n1", report_time=later, devices={"hsm": report.DeviceEntry(devices=[])}
        ).model_dump_json(),
    )
    after = pool.aggregate("hsm", [fresh_pod], before, GRACE, later)
    assert after.aggregated_devices == []


def test_device_seen_on_two_nodes_keeps_the_available_sighting() -> None:
    pods = [pod("d-1", "n1", [found("A", available=False, seen=1)]), pod("d-2", "n2", [found("A", seen=50)])]
    status = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW)
    assert [(d.node_name, d.available) for d in status.aggregated_devices] == [("n2", True)]


def test_unreadable_report_is_counted_as_an_error() -> None:
    status = pool.aggregate("hsm", [pool.DiscoveryPod("d-1", "n1", "{not json")], EMPTY, GRACE, NOW)
    assert status.phase == models.PoolPhase.ERROR


def test_discovery_error_without_devices_is_error() -> None:
    content = report.DeviceReport(
        node_name="n1",
        report_time=NOW,
        devices={"hsm": report.DeviceEntry(status=report.ReportStatus.ERROR, error="udev unreadable")},
    )
    status = pool.aggregate(
        "hsm", [pool.DiscoveryPod("d-1", "n1", content.model_dump_json())], EMPTY, GRACE, NOW
    )
    assert status.phase == models.PoolPhase.ERROR


def test_unchanged_input_keeps_aggregation_time_and_transition_time() -> None:
    pods = [pod("d-1", "n1", [found("A")])]
    first = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW)
    second = pool.aggregate("hsm", pods, first, GRACE, NOW + datetime.timedelta(seconds=30))
    assert second == first


def test_ready_condition_follows_phase() -> None:
    status = pool.aggregate("hsm", [pod("d-1", "n1", [found("A")])], EMPTY, GRACE, NOW)
    ready = [(c.type, c.status, c.reason) for c in status.conditions if c.type == "Ready"]
    assert ready == [("Ready", "True", "Ready")]


def test_the_pool_names_its_resource_and_shows_each_nodes_count_of_it() -> None:
    resources = {"n1": nodes.NodeResource(capacity=1, allocatable=1), "n2": nodes.NodeResource(0, 0)}
    pods = [pod("d-1", "n1", [found("A")]), pod("d-2", "n2", [found("B")])]
    status = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW, resources=resources)
    assert status.resource == "hsm.j5t.io/hsm"
    assert [(n.node_name, n.devices_found, n.allocatable) for n in status.nodes] == [
        ("n1", 1, 1),
        ("n2", 1, 0),
    ]


def test_a_changed_allocatable_count_changes_the_status() -> None:
    pods = [pod("d-1", "n1", [found("A")])]
    before = pool.aggregate("hsm", pods, EMPTY, GRACE, NOW, resources={"n1": nodes.NodeResource(1, 1)})
    later = NOW + datetime.timedelta(seconds=10)
    after = pool.aggregate("hsm", pods, before, GRACE, later, resources={"n1": nodes.NodeResource(1, 0)})
    assert after.nodes[0].allocatable == 0
    assert after.last_aggregation_time == later
