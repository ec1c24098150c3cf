"""The production overlay's NetworkPolicies and Prometheus RBAC, applied to the real API server and
enforced by the nodes' NetworkPolicy engine (kube-router's firewall).

The API server accepts every NetworkPolicy, Role and binding the overlay ships, exactly as ``kubectl
kustomize`` renders them (only their namespace changed to a fresh one). Then pods carrying our components'
labels, each listening on the ports our components use, try every connection that matters, on one node and
across nodes: what the overlay opens connects, everything else is refused. The listeners stand in for the
components (the policies select pods by label and port, not by program); the connections go pod to pod, as
the manager and the API reach agents.
"""

import dataclasses
import functools
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import kubectl, nodes, testkit, wait
from hsm_common import constants

PRODUCTION = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kustomize" / "overlays" / "production"
NAMESPACED = {"NetworkPolicy", "Role", "RoleBinding"}


@pytest.fixture(scope="module")
def applied(kube: testkit.Kube) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The overlay's NetworkPolicies, Roles and RoleBindings applied in a fresh namespace; yields it and the
    documents as rendered."""
    namespace = f"e2e-prod-{uuid.uuid4().hex[:6]}"
    rendered = [d for d in yaml.safe_load_all(kubectl.kustomize(PRODUCTION)) if d]
    docs = [d for d in rendered if d["kind"] in NAMESPACED]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        kube.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in docs))
        yield namespace, docs
    finally:
        kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def stored(kube: testkit.Kube, namespace: str, plural: str, group: str) -> dict[str, dict[str, Any]]:
    items: list[dict[str, Any]] = kube.client.get(f"/apis/{group}/namespaces/{namespace}/{plural}")["items"]
    return {item["metadata"]["name"]: item for item in items}


def test_the_api_server_stores_every_policy_and_role_the_overlay_ships(
    kube: testkit.Kube, applied: tuple[str, list[dict[str, Any]]]
) -> None:
    namespace, docs = applied
    found = {
        **stored(kube, namespace, "networkpolicies", "networking.k8s.io/v1"),
        **stored(kube, namespace, "roles", "rbac.authorization.k8s.io/v1"),
        **stored(kube, namespace, "rolebindings", "rbac.authorization.k8s.io/v1"),
    }
    assert {d["metadata"]["name"] for d in docs} <= set(found)
    assert any(d["kind"] == "NetworkPolicy" for d in docs)
    assert any(d["kind"] == "Role" for d in docs)


def test_stored_policies_deny_by_default_and_open_agents_grpc_only_to_manager_and_api(
    kube: testkit.Kube, applied: tuple[str, list[dict[str, Any]]]
) -> None:
    namespace, _ = applied
    policies = stored(kube, namespace, "networkpolicies", "networking.k8s.io/v1")
    deny = [p for p in policies.values() if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert deny, "no default-deny ingress policy"
    agent_grpc = [
        rule
        for p in policies.values()
        if (p["spec"]["podSelector"].get("matchLabels") or {}).get("app.kubernetes.io/component") == "agent"
        for rule in p["spec"].get("ingress") or []
        if any(port.get("port") == constants.PORT_AGENT_GRPC for port in rule.get("ports") or [])
    ]
    assert agent_grpc, "nothing opens the agents' gRPC port"
    for rule in agent_grpc:
        peers = rule.get("from") or []
        assert peers, "the agents' gRPC port is open to every pod"
        for peer in peers:
            [expression] = peer["podSelector"]["matchExpressions"]
            assert expression["key"] == "app.kubernetes.io/component"
            assert set(expression["values"]) == {"manager", "api"}


GRPC, METRICS, API = constants.PORT_AGENT_GRPC, constants.PORT_METRICS, constants.PORT_API
LISTENER = """
import socket, sys, threading
def serve(port):
    server = socket.create_server(("0.0.0.0", port))
    while True:
        conn, _ = server.accept()
        conn.close()
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
"""
# Prints, for each "ip:port" argument, whether a connection was accepted.
PROBE = """
import json, socket, sys
result = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        result[target] = "open"
    except OSError as err:
        result[target] = type(err).__name__
print(json.dumps(result))
"""
PORTS = (GRPC, METRICS, API)


def _pod(namespace: str, name: str, node: int, component: str | None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": component} if component else {"app": name}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": nodes.name(node),
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "listener",
                    "image": "hsm-manager:e2e",
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", LISTENER, *map(str, PORTS)],
                }
            ],
        },
    }


def _running_ip(kube: testkit.Kube, namespace: str, name: str) -> str | None:
    pod = kube.client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    running = pod["status"].get("phase") == "Running"
    return pod["status"].get("podIP") if running else None


@pytest.fixture(scope="module")
def monitoring(kube: testkit.Kube) -> Iterator[str]:
    """The namespace the overlay lets scrape metrics (``monitoring``), made for the test if it is missing."""
    existing = {n["metadata"]["name"] for n in kube.client.get("/api/v1/namespaces")["items"]}
    made = "monitoring" not in existing
    if made:
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": "monitoring"}})
    yield "monitoring"
    if made:
        kube.client.request("DELETE", "/api/v1/namespaces/monitoring")


@dataclasses.dataclass(frozen=True)
class ProbePod:
    namespace: str
    name: str
    ip: str

    def at(self, port: int) -> str:
        return f"{self.ip}:{port}"


@pytest.fixture(scope="module")
def pods(
    kube: testkit.Kube, applied: tuple[str, list[dict[str, Any]]], monitoring: str
) -> Iterator[dict[str, ProbePod]]:
    """Listener pods by role: agents on both nodes, the others spread over the two."""
    namespace, _ = applied
    other = f"e2e-other-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": other}})
    suffix = uuid.uuid4().hex[:6]
    wanted = {
        "agent-here": (namespace, 1, "agent"),
        "agent-there": (namespace, 2, "agent"),
        "manager": (namespace, 1, "manager"),
        "api": (namespace, 2, "api"),
        "intruder": (namespace, 1, None),
        "prometheus": (monitoring, 1, None),
        "stranger": (other, 2, None),
    }
    try:
        for role, (ns, node, component) in wanted.items():
            pod = _pod(ns, f"{role}-{suffix}", node, component)
            kube.client.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
        found = {}
        for role, (ns, _, _) in wanted.items():
            name = f"{role}-{suffix}"
            ip = wait.until(functools.partial(_running_ip, kube, ns, name), 90, f"{name} running")
            found[role] = ProbePod(ns, name, ip)
        yield found
    finally:
        kube.client.request("DELETE", f"/api/v1/namespaces/{monitoring}/pods/prometheus-{suffix}")
        kube.client.request("DELETE", f"/api/v1/namespaces/{other}")


def _probe(kube: testkit.Kube, source: ProbePod, targets: list[str]) -> dict[str, str]:
    out = kube.kubectl("exec", "-n", source.namespace, source.name, "--", "python", "-c", PROBE, *targets)
    result: dict[str, str] = json.loads(out)
    return result


def test_the_nodes_enforce_exactly_what_the_overlay_opens(
    kube: testkit.Kube, pods: dict[str, ProbePod]
) -> None:
    agent_here, agent_there, manager, api = (pods[r] for r in ("agent-here", "agent-there", "manager", "api"))
    open_, refused = "open", "ConnectionRefusedError"
    # Per source: target -> what a connection meets. Every target pod answers some source, so a refusal is
    # the policy's and not a listener that is not up.
    expected = {
        "manager": {agent_here.at(GRPC): open_, agent_there.at(GRPC): open_, api.at(API): open_},
        "api": {agent_here.at(GRPC): open_, agent_there.at(GRPC): open_},
        "intruder": {
            agent_here.at(GRPC): refused,
            agent_there.at(GRPC): refused,
            agent_there.at(METRICS): refused,
            manager.at(API): refused,
            api.at(API): open_,
        },
        "prometheus": {
            agent_there.at(METRICS): open_,
            manager.at(METRICS): open_,
            agent_there.at(GRPC): refused,
        },
        "stranger": {agent_there.at(GRPC): refused, agent_there.at(METRICS): refused, api.at(API): open_},
    }

    def seen() -> dict[str, dict[str, str]]:
        return {source: _probe(kube, pods[source], list(targets)) for source, targets in expected.items()}

    # The engine programs a pod's rules shortly after the pod starts: wait for the expected picture, then
    # it must hold.
    last: list[dict[str, dict[str, str]]] = [{}]

    def settled() -> bool:
        last[0] = seen()
        return last[0] == expected

    try:
        wait.until(settled, 60, "the policies to be enforced", interval=1)
    except wait.TimeoutExpiredError:
        pytest.fail(f"expected {expected}, saw {last[0]}")
    assert seen() == expected
