"""The local cluster behaves like a real one where the system depends on it: real nodes run our images,
pods reach each other, Services and the API server, and the API server reaches the kubelets."""

import ipaddress
import json
import pathlib
import time
import urllib.request
import uuid
from typing import Any

import pytest
import yaml

from devcluster import build, cluster, images, kubeapi, kubectl, nodes, process, testkit, versions, wait

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


def _http_deployment(namespace: str, name: str, node: str) -> dict[str, Any]:
    """A web server from one of our images (Python's http.server), pinned to ``node``."""
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
                    "nodeName": node,
                    # As the container's first process, http.server ignores SIGTERM: the kubelet kills it
                    # once the grace period is over (30 s by default).
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "http",
                            "image": "hsm-manager:e2e",
                            "imagePullPolicy": "Never",
                            "command": ["python", "-m", "http.server", "8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


def _run_http(kube: testkit.Kube, namespace: str, name: str, node: str) -> dict[str, Any]:
    """Create the web server Deployment ``name`` on ``node``; return its pod once Ready."""
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    kube.client.request("POST", path, _http_deployment(namespace, name, node))
    pod: dict[str, Any] = wait.until(lambda: _ready_pod(kube, namespace, f"app={name}"), 60, f"{name} Ready")
    return pod


def _service(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def test_api_server_is_ready(kube: testkit.Kube) -> None:
    assert kube.kubectl("get", "--raw", "/readyz").strip() == "ok"


def test_server_reports_the_pinned_version(kube: testkit.Kube, devcluster_run: cluster.Cluster) -> None:
    server = json.loads(kube.kubectl("version", "-o", "json"))["serverVersion"]
    assert server["gitVersion"] == versions.KUBERNETES


def test_real_nodes_are_ready_with_their_pod_ranges(
    kube: testkit.Kube, devcluster_run: cluster.Cluster
) -> None:
    node_list = kube.client.get("/api/v1/nodes")["items"]
    assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in node_list} == {
        nodes.name(1): "10.244.1.0/24",
        nodes.name(2): "10.244.2.0/24",
    }
    for node in node_list:
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == versions.KUBERNETES
        assert info["containerRuntimeVersion"].startswith("containerd://")
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


def test_deployment_pod_runs_on_a_real_node_and_answers_on_its_ip(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    pod = _run_http(kube, namespace, "web", nodes.name(2))
    ip = pod["status"]["podIP"]
    node = kube.client.get(f"/api/v1/nodes/{pod['spec']['nodeName']}")
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node["spec"]["podCIDR"])
    # From node-1's namespace to a pod on node-2: the route between the nodes works.
    assert _http_get(f"http://{kube.forward(ip, 8080, node=1)}/") == 200


def test_a_service_is_reached_through_kube_proxy_from_a_pod_on_another_node(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    _run_http(kube, namespace, "backend", nodes.name(1))
    service = kube.client.request(
        "POST", f"/api/v1/namespaces/{namespace}/services", _service(namespace, "backend")
    )
    client = _run_http(kube, namespace, "client", nodes.name(2))
    # A short timeout per attempt: until kube-proxy has programmed the Service, a connection to its address
    # hangs, and one attempt without a timeout would use up the whole wait.
    url = f"http://{service['spec']['clusterIP']}/"
    fetch = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=3).status)"

    def answered() -> bool:
        return (
            kube.kubectl(
                "exec", "-n", namespace, client["metadata"]["name"], "--", "python", "-c", fetch
            ).strip()
            == "200"
        )

    # kubectl exec goes through the API server's egress to the kubelet; the request through kube-proxy.
    wait.until(answered, 60, "the client pod to reach the Service")
    assert "GET / HTTP/1.1" in kube.kubectl("logs", "-n", namespace, "deploy/backend")


def test_a_pod_reaches_the_api_server_through_the_kubernetes_service(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    pod = _run_http(kube, namespace, "caller", nodes.name(1))
    probe = (
        "import os, ssl, urllib.request; sa = '/var/run/secrets/kubernetes.io/serviceaccount';"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt');"
        "url = 'https://' + os.environ['KUBERNETES_SERVICE_HOST'] + '/version';"
        "print(urllib.request.urlopen(url, context=ctx).status)"
    )
    out = kube.kubectl("exec", "-n", namespace, pod["metadata"]["name"], "--", "python", "-c", probe)
    assert out.strip() == "200"


def test_deleting_the_deployment_stops_its_pod(
    kube: testkit.Kube, devcluster_run: cluster.Cluster, namespace: str
) -> None:
    pod = _run_http(kube, namespace, "gone", nodes.name(1))
    url = f"http://{kube.forward(pod['status']['podIP'], 8080)}/"
    assert _http_get(url) == 200
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


def _sandbox_only(run_dir: pathlib.Path) -> cluster.Settings:
    pause = images.pause_image()
    return cluster.Settings(
        run_dir=run_dir, node_count=1, images=(images.archive(pause),), sandbox_image=images.PAUSE_IMAGE
    )


def test_a_second_cluster_runs_beside_the_first_and_down_leaves_no_process(
    devcluster_run: cluster.Cluster, tmp_path: pathlib.Path
) -> None:
    started = time.monotonic()
    running = cluster.up(_sandbox_only(tmp_path / f"second-{uuid.uuid4().hex[:6]}"))
    print(f"second cluster (one real node) up in {time.monotonic() - started:.1f}s")
    assert (running.run_dir / "pod-block").read_text() != (devcluster_run.run_dir / "pod-block").read_text()
    assert all(process.is_alive(p) for p in running.processes)
    assert running.node_names() == [nodes.name(1)]
    cluster.down(running.run_dir)
    for proc in running.processes:
        assert not process.is_alive(proc), proc.name


# An empty devcluster cache, so the whole build path runs (module resolution, wrapper modules, go build,
# install). A few minutes when Go's own caches are warm, as after any earlier build on the machine; ~25 min
# on 2 cores when they are not.
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_cluster_comes_up_from_a_cold_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _sandbox_only(tmp_path / "run")
    monkeypatch.setenv("HSM_DEVCLUSTER_CACHE", str(tmp_path / "cache"))
    bin_dir = build.build()
    running = cluster.up(settings, bin_dir)
    try:
        assert running.client().text("GET", "/readyz") == "ok"
        assert running.node_names() == [nodes.name(1)]
    finally:
        cluster.down(running.run_dir)
