import datetime

from hsm_common import models, report
from hsm_manager.decide import nodes

RESOURCE = "hsm.j5t.io/hsm"
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def node_obj(name: str, capacity: str | None, allocatable: str | None) -> dict:  # type: ignore[type-arg]
    status: dict = {"capacity": {"cpu": "2"}, "allocatable": {"cpu": "2"}}  # type: ignore[type-arg]
    if capacity is not None:
        status["capacity"][RESOURCE] = capacity
    if allocatable is not None:
        status["allocatable"][RESOURCE] = allocatable
    return {"metadata": {"name": name}, "status": status}


def entry(devices: int = 1, plugin: report.PluginStatus | None = None) -> report.DeviceEntry:
    found = [
        report.ReportedDevice(
            device_path=f"/dev/bus/usb/001/00{i}", serial_number=f"S{i}", vendor_id="20a0", product_id="4230",
            available=True, last_seen=NOW,
        )
        for i in range(devices)
    ]  # fmt: skip
    return report.DeviceEntry(devices=found, plugin=plugin)


def registered(healthy: int = 1, error: str | None = None) -> report.PluginStatus:
    return report.PluginStatus(resource=RESOURCE, registered=True, healthy=healthy, error=error)


UNREGISTERED = report.PluginStatus(
    resource=RESOURCE, registered=False, error="kubelet.sock: connection refused"
)


def at(node: str, item: report.DeviceEntry | None, seconds: float = 0) -> nodes.NodeReport:
    return nodes.NodeReport(node, NOW + datetime.timedelta(seconds=seconds), item)


def test_a_node_object_gives_the_resources_capacity_and_allocatable_count() -> None:
    assert nodes.resource_of(node_obj("n1", "2", "1"), RESOURCE) == nodes.NodeResource(2, 1)


def test_a_node_without_the_resource_offers_none() -> None:
    assert nodes.resource_of(node_obj("n1", None, None), RESOURCE) == nodes.NodeResource(0, 0)
    assert nodes.resource_of({"metadata": {"name": "n1"}}, RESOURCE) == nodes.NodeResource(0, 0)


def test_a_node_shows_its_devices_its_counts_and_its_plugin() -> None:
    [shown] = nodes.summarize(
        [at("n1", entry(2, registered(healthy=2)))], {"n1": nodes.NodeResource(2, 1)}, []
    )
    assert shown == models.PoolNode(
        node_name="n1",
        devices_found=2,
        capacity=2,
        allocatable=1,
        plugin_registered=True,
        plugin_healthy=2,
    )


def test_a_discovery_node_the_kubelet_lists_no_resource_for_shows_zero() -> None:
    [shown] = nodes.summarize([at("n1", entry(1, UNREGISTERED))], {}, [])
    assert (shown.capacity, shown.allocatable) == (0, 0)
    assert shown.plugin_registered is False
    assert shown.plugin_error == "kubelet.sock: connection refused"


def test_nodes_that_offer_the_resource_without_discovery_are_listed_too() -> None:
    resources = {"n2": nodes.NodeResource(1, 0), "n3": nodes.NodeResource(0, 0)}
    listed = nodes.summarize([at("n1", entry())], resources, [])
    assert [n.node_name for n in listed] == ["n1", "n2"]
    assert listed[1].devices_found == 0


def test_the_newest_report_of_a_node_counts() -> None:
    reports = [at("n1", entry(2, registered()), seconds=5), at("n1", entry(1, UNREGISTERED), seconds=0)]
    [shown] = nodes.summarize(reports, {}, [])
    assert (shown.devices_found, shown.plugin_registered) == (2, True)


def test_a_pod_not_scheduled_yet_lists_no_node() -> None:
    assert nodes.summarize([nodes.NodeReport("", None, None)], {}, []) == []


def test_unread_nodes_keep_the_counts_shown_before() -> None:
    before = nodes.summarize([at("n1", entry())], {"n1": nodes.NodeResource(1, 1)}, [])
    [shown] = nodes.summarize([at("n1", entry(1, registered()))], None, before)
    assert (shown.capacity, shown.allocatable, shown.plugin_registered) == (1, 1, True)
    [fresh] = nodes.summarize([at("n2", entry())], None, [])
    assert (fresh.capacity, fresh.allocatable) == (None, None)


def test_a_plugin_error_is_a_problem() -> None:
    [shown] = nodes.summarize([at("n1", entry(1, registered(error="allocate: no such device")))], {}, [])
    assert nodes.problem(shown, RESOURCE) == (
        "device plugin for hsm.j5t.io/hsm on node n1: allocate: no such device"
    )


def test_an_unregistered_plugin_with_devices_found_is_a_problem() -> None:
    unregistered = report.PluginStatus(resource=RESOURCE, registered=False)
    [shown] = nodes.summarize([at("n1", entry(2, unregistered))], {}, [])
    assert nodes.problem(shown, RESOURCE) == (
        "device plugin for hsm.j5t.io/hsm on node n1 is not registered with the kubelet: "
        "agents cannot start there (2 devices found)"
    )


def test_no_plugin_at_all_with_devices_found_is_a_problem() -> None:
    [shown] = nodes.summarize([at("n1", entry(1, None))], {}, [])
    problem = nodes.problem(shown, RESOURCE)
    assert problem is not None
    assert problem.startswith("discovery on node n1 serves no device plugin for hsm.j5t.io/hsm")


def test_an_unregistered_plugin_without_devices_is_no_problem() -> None:
    unregistered = report.PluginStatus(resource=RESOURCE, registered=False)
    [shown] = nodes.summarize([at("n1", entry(0, unregistered))], {}, [])
    assert nodes.problem(shown, RESOURCE) is None


def test_a_registered_plugin_is_no_problem() -> None:
    [shown] = nodes.summarize([at("n1", entry(1, registered()))], {}, [])
    assert nodes.problem(shown, RESOURCE) is None


def test_a_problem_is_warned_once_and_again_when_it_changes() -> None:
    broken = nodes.summarize([at("n1", entry(1, UNREGISTERED))], {}, [])
    assert len(nodes.warnings([], broken, RESOURCE)) == 1
    assert nodes.warnings(broken, broken, RESOURCE) == []
    other = report.PluginStatus(resource=RESOURCE, registered=False, error="kubelet restarted")
    changed = nodes.summarize([at("n1", entry(1, other))], {}, [])
    assert nodes.warnings(broken, changed, RESOURCE) == [
        "device plugin for hsm.j5t.io/hsm on node n1: kubelet restarted"
    ]


def test_a_problem_solved_warns_nothing() -> None:
    broken = nodes.summarize([at("n1", entry(1, UNREGISTERED))], {}, [])
    fixed = nodes.summarize([at("n1", entry(1, registered()))], {}, [])
    assert nodes.warnings(broken, fixed, RESOURCE) == []
