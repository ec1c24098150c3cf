"""The whole system end to end (issue #8): two nodes, each with a mocked USB HSM and its own SoftHSM2 token.

The module installs the system on its OWN devcluster (``devcluster.system.install``: real kubelets running
our images, the e2e overlay applied for real, the operator and the API as pods) and walks through the
user's story in order; each test asserts one step and records it on the printed timeline. Later steps rely
on earlier ones.
"""

import base64
import contextlib
import http.client
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import (
    access,
    build,
    cluster,
    demo,
    kubeapi,
    kubeconfig,
    kubectl,
    nodes,
    system,
    testkit,
    usbhsm,
    versions,
    wait,
)

NODE_A, NODE_B = nodes.name(1), nodes.name(2)
NS_A, NS_B = "team-a", "team-b"
GRACE_SECONDS = 8
"""The shortened HSMPool grace period: discovery pods heartbeat every 2 s, so reports stay fresh."""
POOL = f"{system.GROUP_PATH}/namespaces/{system.NAMESPACE}/hsmpools/{system.DEVICE}-pool"
SOFTHSM_MAX_OBJECTS = 100_000
"""The object budget agents give SoftHSM2 tokens when the HSMDevice sets none."""
STEP_TIMEOUT = 90.0
RESOURCE = f"hsm.j5t.io/{system.DEVICE}"
"""The extended resource of the HSMDevice, served by discovery's kubelet device plugin."""
DEVICE_NODE = "/dev/bus/usb/001/015"
"""The mocked Pico HSM's device node (``usbhsm.PICO_HSM``: bus 1, device 15, so 189:14)."""
OVERLAYS = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kustomize" / "overlays"


class Timeline:
    """Steps of the scenario with their time since the start, printed at the end of the module."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.steps: list[str] = []

    def record(self, step: str) -> None:
        line = f"{system.elapsed_since(self.start)}  {step}"
        self.steps.append(line)
        print(line)


class Scenario:
    """The installed system and the scenario's timeline."""

    def __init__(self, installed: system.System, timeline: Timeline) -> None:
        self.system = installed
        self.timeline = timeline
        self.client = installed.client
        self.api = installed.api
        self.marks: dict[str, float] = {}
        self.scrape_token = ""
        """A token of the metrics reader ServiceAccount (``_scrape_token``)."""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    build.build()
    timeline = Timeline()
    options = system.Options(
        run_dir=tmp_path_factory.mktemp("scenario") / "devcluster",
        repo_root=system.repo_root(),
        user_namespaces=(NS_A, NS_B, demo.NAMESPACE),
    )
    installed = system.install(options, timeline.record)
    failed_before = request.session.testsfailed
    try:
        yield Scenario(installed, timeline)
    finally:
        text = "\n".join(["", "scenario timeline:", *timeline.steps])
        if request.session.testsfailed > failed_before:
            text += "\n" + testkit.log_tails(installed.cluster.run_dir)
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        # Printed past pytest's capture: the timeline is the scenario's report, wanted on every run.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(text, flush=True)
        cluster.down(installed.cluster.run_dir)


def _pool(scenario: Scenario) -> dict[str, Any]:
    return system.pool(scenario.client)


def _secret_data(scenario: Scenario, namespace: str, name: str) -> dict[str, bytes] | None:
    try:
        found = scenario.client.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    except kubeapi.ApiError as err:
        if err.status == 404:
            return None
        raise
    return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}


def _wait_secret(scenario: Scenario, namespace: str, name: str, expected: dict[str, bytes]) -> None:
    wait.until(
        lambda: _secret_data(scenario, namespace, name) == expected,
        STEP_TIMEOUT,
        f"Secret {namespace}/{name} to hold {sorted(expected)} with the expected values",
    )


def _wait_status(scenario: Scenario, namespace: str, name: str, version: int) -> None:
    def in_sync() -> bool:
        found = scenario.client.get(f"{system.GROUP_PATH}/namespaces/{namespace}/hsmsecrets/{name}")
        status = found.get("status") or {}
        return status.get("syncStatus") == "InSync" and status.get("hsmVersion") == version

    wait.until(in_sync, STEP_TIMEOUT, f"HSMSecret {namespace}/{name} InSync at version {version}")


def _run_kubectl_hsm(kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The plugin as a user runs it: no --server, so it port-forwards to the API Service (through the API
    server to the node's kubelet) and authenticates with the kubeconfig's token."""
    env = {k: v for k, v in os.environ.items() if k not in ("HSM_TOKEN", "HSM_API_URL")}
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{versions.bin_dir()}{os.pathsep}{env.get('PATH', '')}"  # the version-matched kubectl
    return subprocess.run(
        [sys.executable, "-m", "kubectl_hsm.cli", "--api-namespace", system.NAMESPACE, *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _kubectl_hsm(scenario: Scenario, *args: str) -> str:
    result = _run_kubectl_hsm(scenario.system.user_kubeconfig, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_discovery_pods_report_each_nodes_device(scenario: Scenario) -> None:
    reports = {
        pod["spec"]["nodeName"]: pod["metadata"].get("annotations", {}).get("hsm.j5t.io/device-report", "")
        for pod in system.pods(scenario.client, "discovery")
    }
    for node, serial in scenario.system.serials.items():
        assert serial in reports[node], f"{node} reports no device with serial {serial}"
    scenario.timeline.record("discovery pods report both devices")


def test_the_pool_is_ready_with_both_devices(scenario: Scenario) -> None:
    status = _pool(scenario)
    assert status["phase"] == "Ready"
    assert status["availableDevices"] == 2
    assert {d["serialNumber"] for d in status["aggregatedDevices"]} == set(scenario.system.serials.values())


def test_an_agent_runs_on_each_node(scenario: Scenario) -> None:
    assert set(system.ready_agents(scenario.client)) == {NODE_A, NODE_B}


def _allocatable(scenario: Scenario, node: str) -> str:
    status = scenario.client.get(f"/api/v1/nodes/{node}").get("status", {})
    return str(status.get("allocatable", {}).get(RESOURCE, "0"))


def _plugin(scenario: Scenario, node: str) -> dict[str, Any]:
    """The device plugin status the discovery pod on node reports for the HSMDevice."""
    for pod in system.pods(scenario.client, "discovery"):
        if pod["spec"].get("nodeName") == node:
            raw = pod["metadata"].get("annotations", {}).get("hsm.j5t.io/device-report", "{}")
            entry = json.loads(raw).get("devices", {}).get(system.DEVICE, {})
            return dict(entry.get("plugin") or {})
    return {}


def test_each_node_offers_its_device_as_a_resource(scenario: Scenario) -> None:
    wait.until(
        lambda: all(_allocatable(scenario, node) == "1" for node in (NODE_A, NODE_B)),
        STEP_TIMEOUT,
        f"both nodes offering 1 {RESOURCE}",
    )
    described = kubectl.run(scenario.system.cluster.kubeconfig, "describe", "node", NODE_A)
    assert re.search(rf"{re.escape(RESOURCE)}:\s+1", described), described
    assert all(_plugin(scenario, node).get("registered") for node in (NODE_A, NODE_B))
    scenario.timeline.record(f"kubelets list {RESOURCE}: 1 allocatable on each node")


def test_agents_get_their_device_node_from_the_plugin_without_privilege(scenario: Scenario) -> None:
    agents = system.ready_agents(scenario.client)
    for node, pod in agents.items():
        spec = pod["spec"]
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v], f"{node}: agent mounts host paths"
        for container in spec["containers"]:
            security = container.get("securityContext", {})
            assert not security.get("privileged")
            assert security.get("allowPrivilegeEscalation") is False
            assert security.get("capabilities", {}).get("drop") == ["ALL"]
        assert spec["containers"][0]["resources"]["limits"][RESOURCE] == "1"
        probe = f"import os; s = os.stat({DEVICE_NODE!r}); print(os.major(s.st_rdev), os.minor(s.st_rdev))"
        seen = kubectl.run(
            scenario.system.cluster.kubeconfig,
            "exec", "-n", system.NAMESPACE, pod["metadata"]["name"], "--", "python", "-c", probe,
        )  # fmt: skip
        assert seen.split() == ["189", "14"], f"{node}: {seen!r}"
    scenario.timeline.record(
        f"agents hold {DEVICE_NODE} (189:14) from the plugin; unprivileged, no host paths"
    )


def test_a_secret_written_through_the_api_is_mirrored_to_both_devices(scenario: Scenario) -> None:
    for namespace in (NS_A, NS_B):
        scenario.api.put_secret(f"{namespace}/db", {"password": b"first", "user": namespace.encode()})
    held = scenario.api.versions(f"{NS_A}/db")
    assert held["inSync"]
    assert [d["version"] for d in held["devices"]] == [1, 1]
    scenario.timeline.record("secret written through the REST API, version 1 on both devices")


def test_the_pool_shows_how_full_each_device_is(scenario: Scenario) -> None:
    def capacities() -> dict[str, dict[str, Any]] | None:
        devices = _pool(scenario).get("aggregatedDevices") or []
        found = {d["serialNumber"]: d["capacity"] for d in devices if "capacity" in d}
        # Read on the operator's 10 s device timer: wait for figures that count the secrets just written.
        if len(found) == 2 and all(c["ownObjects"] > 0 for c in found.values()):
            return found
        return None

    found = wait.until(capacities, STEP_TIMEOUT, "the pool to show both devices' capacity", interval=1.0)
    assert set(found) == set(scenario.system.serials.values())
    for figures in found.values():
        # The HSMDevice sets no budget: SoftHSM2's default.
        assert figures["maxObjects"] == SOFTHSM_MAX_OBJECTS
        assert 0 < figures["usedObjects"] < figures["maxObjects"]
    scenario.timeline.record("pool status shows both devices' capacity")


def test_kubectl_hsm_devices_shows_how_full_each_device_is(scenario: Scenario) -> None:
    header, *rows = _kubectl_hsm(scenario, "devices").splitlines()
    assert header.split()[-3:] == ["OBJECTS", "FREE", "MEMORY"]
    assert len(rows) == 2
    for row in rows:
        used, budget = row.split()[-3].split("/")
        assert 0 < int(used) < int(budget) == SOFTHSM_MAX_OBJECTS


def test_hsmsecrets_in_two_namespaces_get_their_secrets(scenario: Scenario) -> None:
    for namespace in (NS_A, NS_B):
        body = {
            "apiVersion": "hsm.j5t.io/v1alpha1",
            "kind": "HSMSecret",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {},
        }
        scenario.client.request("POST", f"{system.GROUP_PATH}/namespaces/{namespace}/hsmsecrets", body)
    for namespace in (NS_A, NS_B):
        _wait_secret(scenario, namespace, "db", {"password": b"first", "user": namespace.encode()})
        _wait_status(scenario, namespace, "db", 1)
    scenario.timeline.record("HSMSecrets in team-a and team-b have their Secrets")


def test_an_update_through_kubectl_hsm_reaches_both_secrets(scenario: Scenario) -> None:
    for namespace in (NS_A, NS_B):
        _kubectl_hsm(scenario, "-n", namespace, "update", "db", "--from-literal", "password=second")
    for namespace in (NS_A, NS_B):
        _wait_secret(scenario, namespace, "db", {"password": b"second"})
        _wait_status(scenario, namespace, "db", 2)
    scenario.timeline.record("kubectl hsm update (by port-forward) reached both Secrets")


SCRAPER = "metrics-scraper"
"""A ServiceAccount in ``default`` bound to the hsm-metrics-reader ClusterRole, as Prometheus's would be."""
NODE_INDEX = {NODE_A: 1, NODE_B: 2}


def _scrape_token(scenario: Scenario) -> str:
    if not scenario.scrape_token:
        scenario.client.request(
            "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": SCRAPER}}
        )
        binding = {
            "metadata": {"name": SCRAPER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "hsm-metrics-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": SCRAPER, "namespace": "default"}],
        }
        scenario.client.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
        scenario.scrape_token = access.service_account_token(scenario.client, "default", SCRAPER)
    return scenario.scrape_token


def _metrics_address(scenario: Scenario, pod: dict[str, Any]) -> str:
    """A host address reaching the pod's metrics port (8080) from inside its node."""
    run_dir, name = scenario.system.cluster.run_dir, f"metrics-{pod['metadata']['name']}"
    node = NODE_INDEX[pod["spec"]["nodeName"]]
    return cluster.forwarded(run_dir, name) or cluster.forward(
        run_dir, name, pod["status"]["podIP"], 8080, node
    )


def _ready_pod(scenario: Scenario, component: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        return next(
            (
                pod
                for pod in system.pods(scenario.client, component)
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (pod.get("status") or {}).get("conditions") or []
                )
            ),
            None,
        )

    found: dict[str, Any] = wait.until(ready, STEP_TIMEOUT, f"a Ready {component} pod")
    return found


@pytest.mark.parametrize(
    ("component", "metric"),
    [
        ("manager", "hsm_manager_sync_total"),
        ("api", "hsm_api_requests_total"),
        ("agent", "hsm_agent_connected 1.0"),
        ("discovery", "hsm_discovery_scans_total"),
    ],
)
def test_metrics_are_https_only_and_for_a_reader_only(
    scenario: Scenario, component: str, metric: str
) -> None:
    address = _metrics_address(scenario, _ready_pod(scenario, component))
    status, text = testkit.scrape(address, None)
    assert status == 401
    assert metric not in text
    # A valid token whose user has no binding of the reader role (the REST API's user).
    stranger = access.service_account_token(scenario.client, "default", system.USER)
    assert testkit.scrape(address, stranger)[0] == 403
    token = _scrape_token(scenario)
    # A new binding takes a moment to reach the API server's authorizer (and a denial is cached for 10 s).
    status, text = wait.until(
        lambda: (found := testkit.scrape(address, token))[0] == 200 and found,
        STEP_TIMEOUT,
        f"the {component}'s metrics for the reader",
        interval=2.0,
    )
    assert metric in text
    assert "_metrics_certificate_expiry_timestamp_seconds " in text
    host, _, port = address.rpartition(":")
    plain = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        plain.request("GET", "/metrics")
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.getresponse()
    finally:
        plain.close()
    scenario.timeline.record(
        f"{component} metrics: 401 without a token, 403 without the role, 200 for a reader"
    )


METRICS_CA_CONFIGMAP = "hsm-metrics-ca"
METRICS_SERVER_NAME = f"hsm-manager-metrics.{system.NAMESPACE}.svc"
"""The server name deploy/examples/servicemonitor.yaml verifies every component's metrics with."""
METRICS_TLS_TIMEOUT = 150.0
"""A pod that started before the operator issued hsm-metrics-tls gets its files at the kubelet's next sync of
the optional volume (about a minute)."""


def _verified_scrape(address: str, ca: str, token: str) -> tuple[int, str] | None:
    """``GET /metrics`` at a forwarder's address as the ServiceMonitor example has Prometheus do it: the
    certificate verified with the published CAs for METRICS_SERVER_NAME; None while it does not verify."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cadata=ca)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        raw = socket.create_connection((host, int(port)), timeout=10)
        try:
            connection.sock = context.wrap_socket(raw, server_hostname=METRICS_SERVER_NAME)
        except ssl.SSLCertVerificationError:
            raw.close()
            return None
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize("component", ["manager", "api", "agent", "discovery"])
def test_metrics_verify_with_the_published_ca_for_the_service_monitors_server_name(
    scenario: Scenario, component: str
) -> None:
    path = f"/api/v1/namespaces/{system.NAMESPACE}/configmaps/{METRICS_CA_CONFIGMAP}"
    ca = wait.until(
        lambda: (scenario.client.get(path).get("data") or {}).get("ca.crt"), STEP_TIMEOUT, "hsm-metrics-ca"
    )
    address, token = _metrics_address(scenario, _ready_pod(scenario, component)), _scrape_token(scenario)
    status, text = wait.until(
        lambda: _verified_scrape(address, ca, token),
        METRICS_TLS_TIMEOUT,
        f"the {component}'s metrics certificate to verify with {METRICS_CA_CONFIGMAP}",
        interval=2.0,
    )
    assert status == 200
    assert "_metrics_certificate_expiry_timestamp_seconds " in text
    scenario.timeline.record(
        f"{component} metrics verified with {METRICS_CA_CONFIGMAP} as {METRICS_SERVER_NAME}"
    )


def _without_api_client_role(scenario: Scenario, tmp_path: pathlib.Path) -> pathlib.Path:
    """The kubeconfig of a new user bound to no Role of the operator namespace."""
    scenario.client.request(
        "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "no-forward"}}
    )
    token = access.service_account_token(scenario.client, "default", "no-forward")
    return kubeconfig.write(
        tmp_path / "no-forward.kubeconfig",
        kubeconfig.for_token(
            scenario.system.cluster.server, scenario.system.cluster.run_dir / "pki" / "ca.crt", token, NS_A
        ),
    )


def test_kubectl_hsm_without_the_api_client_role_is_refused_the_ca_and_the_port_forward(
    scenario: Scenario, tmp_path: pathlib.Path
) -> None:
    config = _without_api_client_role(scenario, tmp_path)
    result = _run_kubectl_hsm(config, "get", "db")
    assert result.returncode == 1
    assert "you may not read the API's CA" in result.stderr
    assert "ask for the hsm-api-client Role" in result.stderr
    # With the CA at hand, the port-forward is what the Role still grants.
    ca_file = scenario.system.cluster.run_dir / system.API_CA_FILE
    result = _run_kubectl_hsm(config, "--certificate-authority", str(ca_file), "get", "db")
    assert result.returncode == 1
    assert "port-forward to svc/hsm-api" in result.stderr
    assert "forbidden" in result.stderr


def test_unplugging_a_device_makes_the_pool_partial(scenario: Scenario) -> None:
    scenario.client.request(
        "PATCH",
        POOL,
        {"spec": {"gracePeriod": f"{GRACE_SECONDS}s"}},
        content_type="application/merge-patch+json",
    )
    scenario.system.testbed(NODE_B).remove(usbhsm.PICO_HSM.sys_path)
    scenario.marks["unplugged"] = time.monotonic()
    scenario.timeline.record(f"USB device unplugged on {NODE_B}")
    wait.until(
        lambda: _pool(scenario).get("phase") == "Partial" and _pool(scenario).get("availableDevices") == 1,
        STEP_TIMEOUT,
        "the pool Partial with one device available",
    )
    scenario.timeline.record("pool Partial")
    wait.until(
        lambda: _allocatable(scenario, NODE_B) == "0", STEP_TIMEOUT, f"{NODE_B} offering no {RESOURCE}"
    )
    scenario.timeline.record(f"{NODE_B}: {RESOURCE} unhealthy, 0 allocatable")


def test_the_unplugged_devices_agent_is_removed_after_the_grace_period(scenario: Scenario) -> None:
    def agent_nodes() -> set[str]:
        return {p["spec"]["nodeName"] for p in system.pods(scenario.client, "agent")}

    wait.until(lambda: agent_nodes() == {NODE_A}, STEP_TIMEOUT, f"the agent on {NODE_B} removed")
    took = time.monotonic() - scenario.marks["unplugged"]
    scenario.timeline.record(
        f"agent on {NODE_B} removed {took:.1f}s after the unplug (grace {GRACE_SECONDS}s)"
    )
    # Not earlier than the grace period allows (less the discovery heartbeat the device was last seen in).
    assert took >= GRACE_SECONDS - 3


def test_the_secret_is_still_served_from_the_other_device(scenario: Scenario) -> None:
    assert scenario.api.get_secret(f"{NS_A}/db") == {"password": b"second"}
    scenario.api.put_secret(f"{NS_A}/db", {"password": b"third"})
    _wait_secret(scenario, NS_A, "db", {"password": b"third"})
    _wait_status(scenario, NS_A, "db", 3)
    scenario.timeline.record("secret read and updated with one device; the Secret followed")


def test_a_replugged_device_gets_its_agent_back(scenario: Scenario) -> None:
    scenario.system.testbed(NODE_B).add(scenario.system.descriptions[NODE_B])
    scenario.timeline.record(f"USB device plugged back on {NODE_B}")
    wait.until(
        lambda: set(system.ready_agents(scenario.client)) == {NODE_A, NODE_B},
        STEP_TIMEOUT,
        f"the agent on {NODE_B} back and Ready",
    )
    wait.until(
        lambda: _pool(scenario).get("phase") == "Ready" and _pool(scenario).get("availableDevices") == 2,
        STEP_TIMEOUT,
        "the pool Ready with both devices again",
    )
    assert _allocatable(scenario, NODE_B) == "1"
    scenario.timeline.record(f"agent on {NODE_B} Ready again; {RESOURCE} allocatable again")


def test_mirror_sync_brings_the_returning_device_up_to_date(scenario: Scenario) -> None:
    def synced() -> dict[str, Any] | None:
        # Each gunicorn worker learns of the returning agent on its own: a sync served by one that has not
        # yet reaches only one device, so repeat it until both hold the newest version.
        scenario.api.mirror_sync()
        held = scenario.api.versions(f"{NS_A}/db")
        return held if held["inSync"] and len(held["devices"]) == 2 else None

    held = wait.until(
        synced, STEP_TIMEOUT, "mirror sync to bring both devices to the newest version", interval=1.0
    )
    assert [d["version"] for d in held["devices"]] == [3, 3]
    scenario.timeline.record("mirror sync: version 3 on both devices again")


def _registrations(scenario: Scenario, node: str) -> float:
    """Successful registrations of the HSMDevice's plugin by the discovery pod on node (its metrics)."""
    pod = next(p for p in system.pods(scenario.client, "discovery") if p["spec"].get("nodeName") == node)
    status, text = testkit.scrape(_metrics_address(scenario, pod), _scrape_token(scenario))
    assert status == 200, text
    found = re.search(
        rf'^hsm_discovery_plugin_registrations_total{{hsm_device="{system.DEVICE}",result="ok"}} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_after_a_kubelet_restart_the_plugin_registers_again_and_agents_roll_out(scenario: Scenario) -> None:
    before = _registrations(scenario, NODE_B)
    cluster.restart_kubelet(scenario.system.cluster.run_dir, NODE_B)
    scenario.timeline.record(f"kubelet on {NODE_B} restarted")
    # The kubelet removes the plugin sockets when it starts: the plugin notices and registers again.
    wait.until(
        lambda: (
            _registrations(scenario, NODE_B) > before
            and _plugin(scenario, NODE_B).get("registered")
            and _allocatable(scenario, NODE_B) == "1"
        ),
        STEP_TIMEOUT,
        f"the plugin on {NODE_B} registered again",
    )
    scenario.timeline.record(f"plugin on {NODE_B} registered again")
    restarted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for deployment in scenario.client.get(
        f"/apis/apps/v1/namespaces/{system.NAMESPACE}/deployments?labelSelector=app.kubernetes.io/component=agent"
    )["items"]:
        scenario.client.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{system.NAMESPACE}/deployments/{deployment['metadata']['name']}",
            {"spec": {"template": {"metadata": {"annotations": {"e2e/restarted-at": restarted}}}}},
            content_type="application/merge-patch+json",
        )

    def rolled_out() -> bool:
        ready = system.ready_agents(scenario.client)
        rolled = {
            node
            for node, pod in ready.items()
            if pod["metadata"].get("annotations", {}).get("e2e/restarted-at") == restarted
        }
        return rolled == {NODE_A, NODE_B}

    wait.until(rolled_out, STEP_TIMEOUT, "the agents rolled out on both nodes")
    stuck = [
        (p["metadata"]["name"], p["status"].get("phase"), p["status"].get("reason"))
        for p in system.pods(scenario.client, "agent")
        if p["status"].get("phase") == "Pending" or p["status"].get("reason") == "UnexpectedAdmissionError"
    ]
    assert not stuck, stuck
    scenario.timeline.record("agents rolled out after the kubelet restart; none Pending or refused admission")


@pytest.mark.parametrize("overlay", sorted(p.name for p in OVERLAYS.iterdir() if p.is_dir()))
def test_every_overlay_passes_a_server_side_dry_run(scenario: Scenario, overlay: str) -> None:
    manifests = kubectl.kustomize(OVERLAYS / overlay)
    kubectl.run(
        scenario.system.cluster.kubeconfig,
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
        stdin=manifests,
    )  # fmt: skip


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    """curl as a user would run it, printing only the HTTP status (000 when none came)."""
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_api_gives_plain_http_no_answer(scenario: Scenario) -> None:
    address = scenario.api.base_url.removeprefix("https://")
    answer = _curl(f"http://{address}/api/v1/health")
    assert answer.stdout == "000", answer
    assert answer.returncode != 0


def test_the_api_fails_verification_without_its_ca(scenario: Scenario) -> None:
    answer = _curl(f"{scenario.api.base_url}/api/v1/health")
    assert answer.returncode == 60, answer  # curl: "SSL certificate problem"
    assert "certificate" in answer.stderr


def test_the_api_is_verified_with_the_published_ca_for_the_service_name(scenario: Scenario) -> None:
    port = scenario.api.base_url.rsplit(":", 1)[1]
    name, ca_file = system.API_SERVER_NAME, scenario.system.cluster.run_dir / system.API_CA_FILE
    answer = _curl(
        "--cacert",
        str(ca_file),
        "--resolve",
        f"{name}:{port}:127.0.0.1",
        f"https://{name}:{port}/api/v1/health",
    )
    assert answer.stdout == "200", answer


def test_kubectl_hsm_refuses_an_api_it_cannot_verify_and_says_what_to_do(
    scenario: Scenario, tmp_path: pathlib.Path
) -> None:
    stranger = tmp_path / "other-ca.crt"
    stranger.write_text(
        (scenario.system.cluster.run_dir / "pki" / "ca.crt").read_text()  # the Kubernetes CA, not the API's
    )
    result = _run_kubectl_hsm(
        scenario.system.user_kubeconfig, "--certificate-authority", str(stranger), "health"
    )
    assert result.returncode == 1
    assert "cannot verify the API server" in result.stderr
    assert "--certificate-authority FILE" in result.stderr


def test_the_demo_stores_a_synced_sample_and_says_how_to_use_it(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    demo.store_sample(scenario.system)
    demo.print_usage(scenario.system.cluster.run_dir)
    shown = capsys.readouterr().out
    assert re.search(rf"^{demo.SAMPLE}\s+{demo.SAMPLE}\s+InSync\s", shown, re.MULTILINE), shown
    assert f"REST API: {scenario.api.base_url}  (HTTPS only" in shown
    port = scenario.api.base_url.rsplit(":", 1)[1]
    name, ca_file = system.API_SERVER_NAME, scenario.system.cluster.run_dir / system.API_CA_FILE
    curl = f"curl --cacert {ca_file} --resolve {name}:{port}:127.0.0.1"
    assert f"{curl} https://{name}:{port}/api/v1/hsm/secrets/{demo.NAMESPACE}/{demo.SAMPLE}" in shown
    assert f"KUBECONFIG={scenario.system.user_kubeconfig}" in shown
    shown_get = _kubectl_hsm(scenario, "-n", demo.NAMESPACE, "get", demo.SAMPLE, "--key", "username")
    assert shown_get == "app"
    assert set(_secret_data(scenario, demo.NAMESPACE, demo.SAMPLE) or {}) == {"username", "password"}
