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
