"""The local control plane behaves like a real cluster where the operator depends on it."""

import ipaddress
import json
import pathlib
import time
import urllib.request
import uuid
from typing import Any

import pytest
import yaml

from devcluster import build, cluster, kubeapi, kubectl, process, testkit, versions, wait

CRD_DIR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kustomize" / "base" / "crds"


def _crd_names() -> list[str]:
    docs = yaml.safe_load_all(kubectl.kustomize(CRD_DIR))
    return [d["metadata"]["name"] for d in docs if d and d.get("kind") == "CustomResourceDefinition"]


@pytest.fixture(scope="module")
def crds(kube: testkit.Kube) -> list[str]:
    """The project's CRDs, applied from kustomize and Established."""
    kube.apply_kustomization(CRD_DIR)
    names = _crd_names()
    kube.wait_crds_established(names)
    return names


def _pods(kube: testkit.Kube, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.client.get(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}"
    )["items"]
    return items


def _ready_pod(kube: testkit.Kube, namespace: str, selector: str) -> dict[str, Any] | None:
    for pod in _pods(kube, namespace, selector):
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True":
            return pod
    return None


def _http_get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (test URL on a pod IP)
        status: int = resp.status
        return status


def _http_deployment(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "http",
                            "image": f"registry.example/{testkit.STAND_IN_HTTP_IMAGE}:1.0",
                            "env": [
                                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                            ],
                            "args": ["--bind", "$(POD_IP)", "8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": "http"}},
                        }
                    ]
                },
            },
        },
    }


def test_api_server_is_ready(kube: testkit.Kube) -> None:
    assert kube.kubectl("get", "--raw", "/readyz").strip() == "ok"


def test_server_reports_the_pinned_version(kube: testkit.Kube, devcluster_run: cluster.Cluster) -> None:
    server = json.loads(kube.kubectl("version", "-o", "json"))["serverVersion"]
    assert server["gitVersion"] == versions.KUBERNETES


def test_fake_nodes_are_ready_and_schedulable(kube: testkit.Kube, devcluster_run: cluster.Cluster) -> None:
    node_list = kube.client.get("/api/v1/nodes")["items"]
    block = int((devcluster_run.run_dir / "pod-block").read_text())
    assert {n["spec"]["podCIDR"] for n in node_list} == {f"127.{block}.1.0/24", f"127.{block}.2.0/24"}
    for node in node_list:
        assert not node["spec"].get("taints")
        assert {"type": "Ready", "status": "True"}.items() <= next(
            c for c in node["status"]["conditions"] if c["type"] == "Ready"
        ).items()


def test_crds_apply_and_become_established(crds: list[str]) -> None:
    assert "hsmsecrets.hsm.j5t.io" in crds


def test_invalid_hsmsecret_is_rejected_by_the_schema(
    kube: testkit.Kube, crds: list[str], namespace: str
) -> None:
    bad = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMSecret",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"deletionPolicy": "Sometimes"},
    }
    with pytest.raises(kubeapi.ApiError) as err:
        kube.client.request("POST", f"/apis/hsm.j5t.io/v1alpha1/namespaces/{namespace}/hsmsecrets", bad)
    assert err.value.status == 422
    assert "deletionPolicy" in err.value.body


def test_deployment_pod_runs_on_a_fake_node_and_answers_on_its_ip(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    kube.client.request(
        "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", _http_deployment(namespace, "web")
    )
    pod = wait.until(lambda: _ready_pod(kube, namespace, "app=web"), 60, "a Ready pod")
    ip = pod["status"]["podIP"]
    assert pod["spec"]["nodeName"].startswith("kwok-node-")
    node = kube.client.get(f"/api/v1/nodes/{pod['spec']['nodeName']}")
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert ipaddress.ip_address(ip).is_loopback
    assert _http_get(f"http://{ip}:8080/") == 200


def test_deleting_the_pod_stops_its_process(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    kube.client.request(
        "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", _http_deployment(namespace, "gone")
    )
    pod = wait.until(lambda: _ready_pod(kube, namespace, "app=gone"), 60, "a Ready pod")
    url = f"http://{pod['status']['podIP']}:8080/"
    kube.client.request("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/gone")

    def refused() -> bool:
        try:
            _http_get(url)
        except OSError:
            return True
        return False

    wait.until(refused, 60, f"{url} to stop answering")


def test_deleting_an_owner_deletes_its_dependents(
    kube: testkit.Kube, crds: list[str], namespace: str
) -> None:
    device = kube.client.request(
        "POST",
        f"/apis/hsm.j5t.io/v1alpha1/namespaces/{namespace}/hsmdevices",
        {
            "apiVersion": "hsm.j5t.io/v1alpha1",
            "kind": "HSMDevice",
            "metadata": {"name": "owner", "namespace": namespace},
            "spec": {
                "deviceType": "Generic",
                "pkcs11": {
                    "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
                    "pinSecret": {"name": "pin", "key": "pin"},
                },
            },
        },
    )
    owner_ref = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMDevice",
        "name": "owner",
        "uid": device["metadata"]["uid"],
    }
    kube.client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "dependent", "namespace": namespace, "ownerReferences": [owner_ref]}},
    )
    kube.client.request("DELETE", f"/apis/hsm.j5t.io/v1alpha1/namespaces/{namespace}/hsmdevices/owner")

    def dependent_gone() -> bool:
        try:
            kube.client.get(f"/api/v1/namespaces/{namespace}/configmaps/dependent")
        except kubeapi.ApiError as err:
            return err.status == 404
        return False

    # The garbage collector learns about new CRDs on its 30 s discovery refresh.
    wait.until(dependent_gone, 90, "the dependent ConfigMap to be collected")


def test_service_account_needs_a_role(kube: testkit.Kube, namespace: str, tmp_path: pathlib.Path) -> None:
    kube.client.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "bot"}}
    )
    as_bot = kube.service_account_kubeconfig(namespace, "bot", tmp_path / "bot.kubeconfig")
    bot = kubeapi.Client.from_kubeconfig(as_bot)
    with pytest.raises(kubeapi.ApiError) as err:
        bot.get(f"/api/v1/namespaces/{namespace}/configmaps")
    assert err.value.status == 403
    kube.client.request(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "metadata": {"name": "read-cm"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    kube.client.request(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": "bot-read-cm"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-cm"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": namespace}],
        },
    )
    listing = wait.until(lambda: bot.get(f"/api/v1/namespaces/{namespace}/configmaps"), 10, "RBAC to allow")
    assert listing["kind"] == "ConfigMapList"


def test_api_server_restart_keeps_objects_and_serves_again(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    kube.client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "survivor"}, "data": {"k": "v"}},
    )
    cluster.stop_component(devcluster_run.run_dir, "kube-apiserver")
    with pytest.raises(ConnectionRefusedError):
        kube.client.text("GET", "/readyz", timeout=2)
    cluster.start_component(devcluster_run.run_dir, "kube-apiserver")
    assert kube.client.get(f"/api/v1/namespaces/{namespace}/configmaps/survivor")["data"] == {"k": "v"}


@pytest.fixture
def second_cluster(devcluster_run: cluster.Cluster, tmp_path: pathlib.Path) -> tuple[cluster.Cluster, float]:
    """Another devcluster from the warm cache, with how long it took to be ready."""
    started = time.monotonic()
    running = cluster.up(cluster.Settings(run_dir=tmp_path / f"second-{uuid.uuid4().hex[:6]}", node_count=1))
    return running, time.monotonic() - started


def test_warm_start_takes_under_30_seconds(second_cluster: tuple[cluster.Cluster, float]) -> None:
    running, elapsed = second_cluster
    cluster.down(running.run_dir)
    assert elapsed < 30, f"warm start took {elapsed:.1f}s"


def test_down_leaves_no_process_behind(second_cluster: tuple[cluster.Cluster, float]) -> None:
    running, _ = second_cluster
    assert all(process.is_alive(p) for p in running.processes)
    cluster.down(running.run_dir)
    for proc in running.processes:
        assert not process.is_alive(proc), proc.name


# An empty devcluster cache, so the whole build path runs (module resolution, wrapper modules, go build,
# install). ~40 s when Go's own caches are warm, as after any earlier build on the machine; ~20 min on
# 2 cores when they are not.
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_cluster_comes_up_from_a_cold_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_DEVCLUSTER_CACHE", str(tmp_path / "cache"))
    bin_dir = build.build()
    running = cluster.up(
        cluster.Settings(run_dir=tmp_path / "run", node_count=1, start_podrunner=False), bin_dir
    )
    try:
        assert running.client().text("GET", "/readyz") == "ok"
    finally:
        cluster.down(running.run_dir)
