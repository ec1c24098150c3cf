"""Every overlay builds, and what it builds keeps the project's security rules."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import kubectl
from hsm_common import constants
from hsm_manager.gateway import pki

ROOT = pathlib.Path(__file__).resolve().parents[2]
OVERLAYS = sorted(
    p.parent.name for p in (ROOT / "deploy" / "kustomize" / "overlays").glob("*/kustomization.yaml")
)
OUR_IMAGES = ("hsm-manager", "hsm-agent", "hsm-discovery")


def build(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl.binary(), "kustomize", str(ROOT / "deploy" / "kustomize" / "overlays" / overlay)],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    yield from spec.get("containers", [])
    yield from spec.get("initContainers", [])


def test_the_three_overlays_exist() -> None:
    assert {"production", "dev", "e2e"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_has_no_wildcards(overlay: str) -> None:
    for doc in build(overlay):
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc.get("rules", []):
                for field in ("verbs", "resources", "apiGroups"):
                    assert "*" not in rule.get(field, []), f"{doc['metadata']['name']}: wildcard {field}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_access_is_granted_only_to_the_manager_and_the_api(overlay: str) -> None:
    for doc in build(overlay):
        if doc["kind"] in ("Role", "ClusterRole"):
            grants_secrets = any("secrets" in rule.get("resources", []) for rule in doc.get("rules", []))
            if grants_secrets:
                assert doc["metadata"]["name"] in ("hsm-manager", "hsm-api"), doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_hardened(overlay: str) -> None:
    workloads = [doc for doc in build(overlay) if doc["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in workloads} >= {"hsm-manager", "hsm-api"}
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["serviceAccountName"].startswith("hsm-")
        for container in containers(doc):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_get_no_service_link_variables(overlay: str) -> None:
    # Settings are HSM_MANAGER_* variables; the hsm-manager-metrics Service would inject
    # HSM_MANAGER_METRICS_PORT=tcp://… into every pod of the namespace.
    for doc in build(overlay):
        if doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["spec"]["enableServiceLinks"] is False, doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_ours_and_tagged_by_the_overlay(overlay: str) -> None:
    for doc in build(overlay):
        for container in containers(doc):
            name, _, tag = container["image"].rpartition(":")
            assert name.rsplit("/", 1)[-1] in OUR_IMAGES
            assert tag, f"{container['image']} has no tag"


def test_manager_is_a_single_active_instance() -> None:
    manager = next(
        d for d in build("production") if d["kind"] == "Deployment" and d["metadata"]["name"] == "hsm-manager"
    )
    assert manager["spec"]["replicas"] == 1
    assert manager["spec"]["strategy"]["type"] == "Recreate"


def test_production_protects_the_api_and_the_agents() -> None:
    docs = build("production")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("PodDisruptionBudget", "hsm-api") in kinds
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    agent = policies["agent-grpc-from-manager"]["spec"]
    assert agent["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "agent"}
    assert agent["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9090}]


def test_agent_and_discovery_images_follow_the_overlay_tags() -> None:
    for overlay, tag in (("e2e", "e2e"), ("production", "0.1.0")):
        manager = next(
            d for d in build(overlay) if d["kind"] == "Deployment" and d["metadata"]["name"] == "hsm-manager"
        )
        env = {e["name"]: e.get("value") for e in manager["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["HSM_MANAGER_AGENT_IMAGE"].endswith(f"hsm-agent:{tag}")
        assert env["HSM_MANAGER_DISCOVERY_IMAGE"].endswith(f"hsm-discovery:{tag}")


def manager_env(overlay: str) -> dict[str, str | None]:
    manager = next(
        d for d in build(overlay) if d["kind"] == "Deployment" and d["metadata"]["name"] == "hsm-manager"
    )
    return {e["name"]: e.get("value") for e in manager["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_an_overlay_gives_the_operator_is_one_it_reads(overlay: str) -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "hsm_manager", "operator", "--help"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    known = set(re.findall(r"env\s+(HSM_MANAGER_\w+)", usage))
    assert {name for name in manager_env(overlay) if name.startswith("HSM_MANAGER_")} <= known


def test_e2e_agents_get_the_softhsm2_store_through_the_device_plugin() -> None:
    env = manager_env("e2e")
    assert env["HSM_MANAGER_DEVICE_MOUNTS"] == "/var/lib/hsm-devcluster/softhsm"
    assert env["HSM_MANAGER_DEVICE_ENV"] == "SOFTHSM2_CONF=/var/lib/hsm-devcluster/softhsm/softhsm2.conf"
    assert env["HSM_MANAGER_DEVICE_NODE_ROOT"] == "/var/lib/hsm-devcluster/devnodes"


def test_production_enforces_only_what_discovery_needs_and_reports_the_rest() -> None:
    [namespace] = [d for d in build("production") if d["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_has_a_metrics_service_a_service_monitor_can_select(overlay: str) -> None:
    docs = build(overlay)
    services = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
    }
    assert set(services) == {"manager", "api", "agent", "discovery"}
    for component, service in services.items():
        assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "hsm-secrets-operator"
        assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics"}]
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == component
    for name in ("hsm-manager", "hsm-api"):
        [container] = _named(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": 8080} in container["ports"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manager_and_the_api_serve_metrics_with_the_operators_leaf_once_it_exists(overlay: str) -> None:
    docs = build(overlay)
    for name in ("hsm-manager", "hsm-api"):
        pod = _named(docs, "Deployment", name)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert f"--metrics-cert-dir={constants.METRICS_CERT_DIR}" in container["args"]
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == constants.METRICS_CERT_DIR]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"] == {"secretName": constants.METRICS_TLS_SECRET, "optional": True}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_metrics_leaf_names_every_metrics_service(overlay: str) -> None:
    services = {d["metadata"]["name"] for d in build(overlay) if d["kind"] == "Service"}
    assert {s for s in services if s.endswith("-metrics")} == set(pki.METRICS_SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_components_service_account_may_review_its_scrapers_and_nothing_more(overlay: str) -> None:
    docs = build(overlay)
    reviews = _named(docs, "ClusterRole", "hsm-metrics-reviews")
    assert reviews["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    subjects = _named(docs, "ClusterRoleBinding", "hsm-metrics-reviews")["subjects"]
    namespace = "hsm-secrets-operator-system"
    assert {(s["kind"], s["name"], s.get("namespace")) for s in subjects} == {
        ("ServiceAccount", "hsm-manager", namespace),
        ("ServiceAccount", "hsm-api", namespace),
        ("ServiceAccount", "hsm-discovery", namespace),
        # The agents' ServiceAccounts, which the operator makes per HSMDevice.
        ("Group", f"system:serviceaccounts:{namespace}", None),
    }
    reader = _named(docs, "ClusterRole", "hsm-metrics-reader")
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def test_production_lets_prometheus_find_and_read_the_metrics() -> None:
    docs = build("production")
    prometheus = {"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}
    reader = _named(docs, "ClusterRoleBinding", "hsm-metrics-reader-prometheus")
    assert reader["roleRef"]["name"] == "hsm-metrics-reader"
    assert reader["subjects"] == [prometheus]
    role = _named(docs, "Role", "hsm-prometheus")
    assert role["metadata"]["namespace"] == "hsm-secrets-operator-system"
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    found = {(g, r) for g, r, _ in granted}
    assert found == {
        ("", "services"),
        ("", "endpoints"),
        ("", "pods"),
        ("discovery.k8s.io", "endpointslices"),
    }
    assert {v for _, _, v in granted} == {"get", "list", "watch"}
    binding = _named(docs, "RoleBinding", "hsm-prometheus")
    assert (binding["roleRef"]["name"], binding["subjects"]) == ("hsm-prometheus", [prometheus])


def test_production_puts_its_own_objects_in_the_operator_namespace() -> None:
    for doc in build("production"):
        if doc["kind"] in ("NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "Service"):
            assert doc["metadata"].get("namespace") == "hsm-secrets-operator-system", doc["metadata"]["name"]


def test_production_opens_metrics_to_monitoring_and_probe_ports_to_the_kubelet() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in build("production") if d["kind"] == "NetworkPolicy"}
    metrics = policies["metrics-from-monitoring"]
    # Every pod: the agents and discovery pods carry no app.kubernetes.io/name label.
    assert metrics["podSelector"] == {}
    [rule] = metrics["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    probes = policies["probes"]
    assert {p["port"] for p in probes["ingress"][0]["ports"]} == {8081, 8093, 8094}
    assert "from" not in probes["ingress"][0]


WORKLOADS = {"deployments", "statefulsets", "daemonsets"}


def _patches_workloads(role: dict[str, Any]) -> bool:
    return any(
        "apps" in rule.get("apiGroups", [])
        and WORKLOADS & set(rule.get("resources", []))
        and "patch" in rule.get("verbs", [])
        for rule in role.get("rules", [])
    )


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_rollout_restarts_are_opt_in_no_role_patches_workloads_by_default(overlay: str) -> None:
    roles = [d for d in build(overlay) if d["kind"] in ("Role", "ClusterRole")]
    assert [r["metadata"]["name"] for r in roles if _patches_workloads(r)] == []


def test_the_e2e_overlay_lets_the_manager_restart_workloads_with_patch_only() -> None:
    docs = build("e2e")
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    assert [r["metadata"]["name"] for r in roles if _patches_workloads(r)] == ["hsm-manager-rollout-restart"]
    role = _named(docs, "ClusterRole", "hsm-manager-rollout-restart")
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets", "daemonsets"],
            "verbs": ["patch"],
        }
    ]
    binding = _named(docs, "ClusterRoleBinding", "hsm-manager-rollout-restart")
    assert binding["roleRef"]["name"] == "hsm-manager-rollout-restart"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hsm-manager", "namespace": "hsm-secrets-operator-system"}
    ]
    assert role["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hsm-secrets-operator"
