"""The pool reconciler against an in-memory API server: what one HSMDevice's pass leaves in the cluster."""

from __future__ import annotations

import datetime

import pytest

from hsm_common import constants, models, report
from hsm_manager import kube
from hsm_manager.decide import agentspec, discoveryspec, model
from hsm_manager.gateway import castore, pki
from hsm_manager.operator import config, pools

from .. import fakes
from .conftest import DEVICE, OPERATOR_NS

SERIALS = ("A", "B")


def discovery_pod(node: str, serials: tuple[str, ...], plugin: report.PluginStatus | None = None) -> kube.Obj:
    now = datetime.datetime.now(datetime.UTC)
    found = [
        report.ReportedDevice(
            device_path=f"/dev/{serial}", serial_number=serial, vendor_id="20a0", product_id="4230",
            available=True, last_seen=now,
        )
        for serial in serials
    ]  # fmt: skip
    content = report.DeviceReport(
        node_name=node, report_time=now, devices={DEVICE: report.DeviceEntry(devices=found, plugin=plugin)}
    )
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"discovery-{node}",
            "namespace": OPERATOR_NS,
            "labels": {constants.LABEL_COMPONENT: discoveryspec.COMPONENT, constants.LABEL_DEVICE: DEVICE},
            "annotations": {constants.ANNOTATION_DEVICE_REPORT: content.model_dump_json()},
        },
        "spec": {"nodeName": node},
    }


@pytest.fixture
def reconciler(
    cfg: config.OperatorConfig, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> pools.Reconciler:
    return pools.Reconciler(cluster, castore.Holder(castore.Authority(pki.new_ca())), cfg, directory)  # type: ignore[arg-type]


@pytest.fixture
def device(cluster: fakes.FakeKube) -> kube.Obj:
    found = cluster.stored(constants.KIND_DEVICE, OPERATOR_NS, DEVICE)
    assert found is not None
    return found


def agents(cluster: fakes.FakeKube) -> list[str]:
    selector = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT}"
    return [d["metadata"]["name"] for d in cluster.list_objects("Deployment", OPERATOR_NS, selector)]


def test_a_device_gets_its_pool_discovery_daemonset_and_service_account(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    reconciler.reconcile(device)
    kinds = sorted(kind for kind, _, _ in cluster.objects)
    assert kinds == ["DaemonSet", constants.KIND_DEVICE, constants.KIND_POOL, "ServiceAccount"]


def test_every_reported_device_gets_one_agent_with_a_serving_certificate(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    assert reconciler.reconcile(device) == models.PoolPhase.READY
    expected = sorted(agentspec.agent_name(DEVICE, serial) for serial in SERIALS)
    assert agents(cluster) == expected
    for agent in expected:
        issued = cluster.stored("Secret", OPERATOR_NS, agentspec.tls_secret_name(agent))
        assert issued is not None
        assert pki.subject_names(pki.secret_data(issued)["tls.crt"]) == [agent]


def test_a_second_pass_changes_nothing(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    reconciler.reconcile(device)
    before = list(cluster.calls)
    reconciler.reconcile(device)
    assert cluster.calls == before


def test_an_agent_without_its_device_is_removed_with_its_certificate(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    reconciler.reconcile(device)
    cluster.add(discovery_pod("n1", ("A",)))
    pool = cluster.stored(constants.KIND_POOL, OPERATOR_NS, f"{DEVICE}-pool")
    assert pool is not None
    cluster.add({**pool, "status": {}})  # the pool no longer lists B, as after its grace period
    reconciler.reconcile(device)
    gone = agentspec.agent_name(DEVICE, "B")
    assert agents(cluster) == [agentspec.agent_name(DEVICE, "A")]
    assert cluster.stored("Secret", OPERATOR_NS, agentspec.tls_secret_name(gone)) is None


def test_capacity_is_read_from_the_agents_only_when_asked(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, directory: fakes.FakeDirectory, device: kube.Obj
) -> None:
    for agent in directory.clients.values():
        agent.capacity = model.Capacity(10, 3, 6, 3, 9)
    reconciler.reconcile(device)
    assert all("info" not in agent.calls for agent in directory.clients.values())
    reconciler.reconcile(device, refresh=True)
    assert all("info" in agent.calls for agent in directory.clients.values())


RESOURCE = constants.resource_name(DEVICE)


def registered(is_registered: bool = True) -> report.PluginStatus:
    return report.PluginStatus(resource=RESOURCE, registered=is_registered, healthy=2 if is_registered else 0)


def node(name: str, allocatable: int, capacity: int = 2) -> kube.Obj:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": {RESOURCE: str(capacity)}, "allocatable": {RESOURCE: str(allocatable)}},
    }


def pool_status(cluster: fakes.FakeKube) -> models.HSMPoolStatus:
    pool = cluster.stored(constants.KIND_POOL, OPERATOR_NS, f"{DEVICE}-pool")
    assert pool is not None
    return models.HSMPoolStatus.model_validate(pool["status"])


def test_the_pool_shows_each_nodes_allocatable_count_and_plugin(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered()))
    cluster.add(node("n1", allocatable=2))
    reconciler.reconcile(device, refresh=True)
    [shown] = pool_status(cluster).nodes
    assert (shown.node_name, shown.capacity, shown.allocatable) == ("n1", 2, 2)
    assert (shown.plugin_registered, shown.plugin_healthy) == (True, 2)


def test_an_allocatable_count_that_drops_shows_at_the_next_periodic_pass(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered()))
    cluster.add(node("n1", allocatable=2))
    reconciler.reconcile(device, refresh=True)
    cluster.add(node("n1", allocatable=1))
    reconciler.reconcile(device, refresh=True)
    assert pool_status(cluster).nodes[0].allocatable == 1


def test_a_pass_on_a_pod_event_keeps_the_node_counts_shown(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered()))
    cluster.add(node("n1", allocatable=2))
    reconciler.reconcile(device, refresh=True)
    cluster.add(node("n1", allocatable=1))
    reconciler.reconcile(device)
    assert pool_status(cluster).nodes[0].allocatable == 2


def test_only_the_nodes_the_device_selects_are_read(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add({**device, "spec": {**device["spec"], "nodeSelector": {"hsm": "yes"}}})
    selected = cluster.stored(constants.KIND_DEVICE, OPERATOR_NS, DEVICE)
    assert selected is not None
    elsewhere = node("n2", allocatable=1)
    cluster.add(elsewhere)
    chosen = node("n1", allocatable=2)
    chosen["metadata"]["labels"]["hsm"] = "yes"
    cluster.add(chosen)
    reconciler.reconcile(selected, refresh=True)
    assert [n.node_name for n in pool_status(cluster).nodes] == ["n1"]


def test_an_unregistered_plugin_on_a_node_with_devices_is_warned_once(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered(False)))
    reconciler.reconcile(device)
    reconciler.reconcile(device)
    warned = [e for e in cluster.events if e.reason == pools.PLUGIN_WARNING]
    assert [(e.kind, e.warning) for e in warned] == [(constants.KIND_POOL, True)]
    assert "on node n1 is not registered with the kubelet" in warned[0].message


def test_a_node_list_refused_keeps_the_counts_shown(
    reconciler: pools.Reconciler,
    cluster: fakes.FakeKube,
    device: kube.Obj,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered()))
    cluster.add(node("n1", allocatable=2))
    reconciler.reconcile(device, refresh=True)
    listed = cluster.list_objects

    def nodes_forbidden(kind: str, namespace: str | None, selector: str) -> list[kube.Obj]:
        if kind == "Node":
            raise kube.KubeError("list Node: 403 Forbidden", 403)
        return listed(kind, namespace, selector)

    monkeypatch.setattr(cluster, "list_objects", nodes_forbidden)
    cluster.add(node("n1", allocatable=0))
    assert reconciler.reconcile(device, refresh=True) == models.PoolPhase.READY
    assert pool_status(cluster).nodes[0].allocatable == 2


def test_agents_request_their_device_and_mount_no_host_path(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS, registered()))
    reconciler.reconcile(device)
    for name in agents(cluster):
        deployment = cluster.stored("Deployment", OPERATOR_NS, name)
        assert deployment is not None
        pod = deployment["spec"]["template"]["spec"]
        assert pod["containers"][0]["resources"]["limits"][RESOURCE] == "1"
        assert all("hostPath" not in volume for volume in pod["volumes"])


def agent_pod(name: str, phase: str, reason: str = "") -> kube.Obj:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": OPERATOR_NS,
            "uid": f"uid-{name}",
            "labels": {constants.LABEL_COMPONENT: agentspec.COMPONENT, constants.LABEL_DEVICE: DEVICE},
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": phase, "reason": reason},
    }


def test_agent_pods_refused_at_admission_are_cleared_and_no_others(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    cluster.add(agent_pod("refused", "Failed", "UnexpectedAdmissionError"))
    cluster.add(agent_pod("crashed", "Failed", "Error"))
    cluster.add(agent_pod("running", "Running"))
    reconciler.reconcile(device)
    assert cluster.stored("Pod", OPERATOR_NS, "refused") is not None  # pod events' passes list no pods
    reconciler.reconcile(device, refresh=True)
    assert cluster.stored("Pod", OPERATOR_NS, "refused") is None
    assert cluster.stored("Pod", OPERATOR_NS, "crashed") is not None
    assert cluster.stored("Pod", OPERATOR_NS, "running") is not None


def test_a_deleted_device_leaves_nothing_it_owned_and_a_stale_pass_recreates_nothing(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    reconciler.reconcile(device)
    foreign = {"kind": "Secret", "metadata": {"name": "unrelated", "namespace": OPERATOR_NS}}
    cluster.add(foreign)
    uid = device["metadata"]["uid"]
    cluster.delete(constants.KIND_DEVICE, OPERATOR_NS, DEVICE)
    reconciler.forget(OPERATOR_NS, DEVICE, uid)
    remaining = sorted((kind, name) for kind, _, name in cluster.objects)
    assert remaining == [("Pod", "discovery-n1"), ("Secret", "unrelated")]
    assert reconciler.reconcile(device) is None
    assert sorted((kind, name) for kind, _, name in cluster.objects) == remaining


def test_forgetting_an_older_incarnation_keeps_the_objects_of_the_current_one(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", SERIALS))
    reconciler.reconcile(device)
    before = sorted(cluster.objects)
    reconciler.forget(OPERATOR_NS, DEVICE, "uid-of-an-older-device")
    assert sorted(cluster.objects) == before


def test_a_renewed_serving_certificate_replaces_the_secret_and_restarts_no_agent(
    reconciler: pools.Reconciler, cluster: fakes.FakeKube, device: kube.Obj
) -> None:
    cluster.add(discovery_pod("n1", ("A",)))
    reconciler.reconcile(device)
    agent = agentspec.agent_name(DEVICE, "A")
    secret = cluster.stored("Secret", OPERATOR_NS, agentspec.tls_secret_name(agent))
    assert secret is not None
    issued_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=80)
    expiring = pki.issue(reconciler._authority.current().signing, agent, client=False, now=issued_at)
    cluster.add({**secret, "data": {**secret["data"], "tls.crt": pki._b64(expiring.cert)}})
    before = len(cluster.calls)
    reconciler.reconcile(device)
    renewed = cluster.stored("Secret", OPERATOR_NS, agentspec.tls_secret_name(agent))
    assert renewed is not None
    assert not pki.needs_renewal(pki.secret_data(renewed)["tls.crt"], reconciler._authority.current().signing)
    assert [c for c in cluster.calls[before:] if c[1] in ("Secret", "Deployment")] == [
        ("replace", "Secret", agentspec.tls_secret_name(agent))
    ]
