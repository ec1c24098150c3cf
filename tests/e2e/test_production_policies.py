"""The production overlay's NetworkPolicies and Prometheus RBAC, applied to the real API server.

What this shows: the API server accepts every NetworkPolicy, Role and binding the overlay ships, exactly as
``kubectl kustomize`` renders them (only their namespace changed to a fresh one), and stores the rules the
overlay means. What it cannot show: that a denied connection is dropped. The devcluster's nodes use plain
bridge networking without a NetworkPolicy engine, so the policies are stored but not enforced here; their
rules are read back and checked instead.
"""

import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import kubectl, testkit
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
