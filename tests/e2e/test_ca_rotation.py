"""A CA rotation on the devcluster: both agents serve a leaf of the new CA without a restart, no sync fails,
and their /metrics then verify with the one CA the operator publishes for scrapers.

The operator runs with --ca-renew-fraction=1, so its CA is due at once: the rotation begins at its first
round and goes through Trusting and Issuing at the pace of real kubelets (Secret volumes synced on their own
schedule) and of the clients' 90 s re-read window, while the backstop syncs an HSMSecret of each device every
5 s. (With the CA always due, the next rotation begins right after the first ends; the test stops there.)
"""

import base64
import contextlib
import functools
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
from cryptography import x509

from devcluster import kubectl, nodes, testkit
from hsm_common import constants
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

GP = env.GROUP_PATH
DEVICES = ("rot-a", "rot-b")


@pytest.fixture(scope="module")
def rotating(
    kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[env.Operator, list[env.Device]]]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("ca-rotation")
    op = env.start_operator(
        kube, tmp, ("--default-sync-interval=5s", "--ca-renew-fraction=1", "--ca-rotation-interval=2s")
    )
    deployed: list[env.Device] = []
    try:
        for name in DEVICES:
            deployed.append(env.deploy_device(op, name, nodes.name(1)))
        yield op, deployed
    finally:
        agent_logs = _agent_logs(kube, op.namespace)
        env.remove_operator(op)
        for device in deployed:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)
        # What a failed run needs to tell a race from a bug: every step, reload and refusal, in order.
        print(*(line for line in op.log.read_text().splitlines() if _ROTATION_WORDS.search(line)), sep="\n")
        print(agent_logs)


_ROTATION_WORDS = re.compile(
    r"ca_rotation|certificate|watch stream|sync pass failed|result\W+error|Traceback|SyncFailed"
)


def _agent_logs(kube: testkit.Kube, namespace: str) -> str:
    """The TLS lines of every agent pod's log (best effort: the report of a failure, not a check)."""
    try:
        text = kube.kubectl("logs", "-n", namespace, "-l", "app.kubernetes.io/component=agent", "--prefix")
    except (kubectl.KubectlError, subprocess.TimeoutExpired) as error:  # a report must not hide the outcome
        return f"agent logs unavailable: {error}"
    return "\n".join(line for line in text.splitlines() if "tls" in line)


def secret_data(kube: testkit.Kube, namespace: str, name: str) -> dict[str, bytes]:
    found = env.get(kube, f"/api/v1/namespaces/{namespace}/secrets/{name}") or {}
    return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}


def agent_pods(kube: testkit.Kube, namespace: str) -> dict[str, tuple[str, int]]:
    """uid and container restarts of each agent pod, by name."""
    pods: list[dict[str, Any]] = kube.client.get(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=agent"
    )["items"]
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            sum(c.get("restartCount", 0) for c in (p.get("status") or {}).get("containerStatuses") or []),
        )
        for p in pods
    }


def sync_errors(op: env.Operator) -> dict[str, float]:
    """Failed sync passes by reason, as the operator's metrics count them (reasons never seen are absent)."""
    found: dict[str, float] = {}
    for line in op.metrics_text().splitlines():
        if line.startswith("hsm_manager_sync_errors_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels] = float(value)
    return {labels: value for labels, value in found.items() if value}


def rotation_phase(op: env.Operator) -> str | None:
    """The phase the operator's metrics say the CA rotation is in (None before its first round, or when a
    scrape fails: the timeline only observes, the assertions are on the CA Secret and the agents)."""
    try:
        text = op.metrics_text()
    except (OSError, RuntimeError):
        return None
    for line in text.splitlines():
        if line.startswith("hsm_manager_ca_rotation_phase{") and line.endswith(" 1.0"):
            return line.split('phase="', 1)[1].split('"', 1)[0]
    return None


def test_a_ca_rotation_completes_with_both_agents_serving_without_restart_and_no_failed_sync(
    kube: testkit.Kube, rotating: tuple[env.Operator, list[env.Device]], request: pytest.FixtureRequest
) -> None:
    op, devices = rotating
    start = time.monotonic()
    timeline: list[str] = []

    def record(step: str) -> None:
        timeline.append(f"{time.monotonic() - start:7.1f}s  {step}")

    namespace = op.namespace
    first = secret_data(kube, namespace, "hsm-manager-ca")["tls.crt"]
    for device in devices:
        device.stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(
                path=f"{namespace}/{device.name}", secret_data=hsm_pb2.SecretData(data={"k": b"v"})
            ),
            timeout=10,
        )
        kube.client.request(
            "POST",
            f"{GP}/namespaces/{namespace}/hsmsecrets",
            env.hsmsecret_manifest(namespace, device.name, device=device.name),
        )
    pods = testkit.poll(
        lambda: (p := agent_pods(kube, namespace)) and len(p) == len(DEVICES) and p, 30, "agents"
    )

    record("HSMSecrets created, agents up")

    def in_sync(name: str) -> bool:
        found = env.get(kube, f"{GP}/namespaces/{namespace}/hsmsecrets/{name}") or {}
        return (found.get("status") or {}).get("syncStatus") == "InSync"

    testkit.poll(lambda: all(in_sync(d.name) for d in devices), 60, "both HSMSecrets InSync")
    # Counted from here while still Trusting: a pass that ran before the operator saw a just-Ready agent is
    # the set-up's, and until Promote nobody presents a leaf of the next CA, so no rotation step can fail a
    # pass before. Past Trusting already, every failed pass counts.
    phase = rotation_phase(op)
    before = sync_errors(op) if phase == "Trusting" else {}
    record(f"both InSync, phase {phase}; failed passes not counted: {before or 'none'}")
    seen: list[str] = []

    def rotated() -> bool:
        phase = rotation_phase(op)
        if phase is not None and (not seen or seen[-1] != phase):
            seen.append(phase)
            record(f"rotation phase {phase}")
        ca = secret_data(kube, namespace, "hsm-manager-ca")
        return ca["tls.crt"] != first and "previous.crt" not in ca

    testkit.poll(rotated, 600, "the first CA rotation to drop the old CA", period=2)
    record("old CA dropped: only the new CA in hsm-manager-ca")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    # Printed past pytest's capture: the rotation's timeline is this test's report, wanted on every run.
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n".join(["", "CA rotation timeline (polled every 2 s):", *timeline]), flush=True)
    new_ca = secret_data(kube, namespace, "hsm-manager-ca")["tls.crt"]
    assert agent_pods(kube, namespace) == pods
    client = secret_data(kube, namespace, "hsm-manager-client-tls")
    for device in devices:
        pod = env.ready_agent_pod(kube, namespace, device.name)
        assert pod is not None
        # A client trusting only the new CA, with the manager's current (new) leaf, is served.
        tls = channel.ClientTLS(
            new_ca,
            client["tls.crt"],
            client["tls.key"],
            server_name=pod["metadata"]["labels"]["app.kubernetes.io/instance"],
        )
        address = kube.forward(pod["status"]["podIP"], constants.PORT_AGENT_GRPC, env.OPERATOR_NODE)
        with channel.open_channel(address, tls) as chan:
            assert channel.agent_stub(chan).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=10).connected
        status = (env.get(kube, f"{GP}/namespaces/{namespace}/hsmsecrets/{device.name}") or {}).get(
            "status"
        ) or {}
        assert status.get("syncStatus") == "InSync"
    assert x509.load_pem_x509_certificate(new_ca) != x509.load_pem_x509_certificate(first)
    assert sync_errors(op) == before
    assert "ca_rotation_round_failed" not in op.log.read_text()


METRICS_TLS_TIMEOUT = 150.0
"""The metrics leaf is issued again at Promote, and the Drop does not wait for it to reach the pods: the
kubelet brings it at its next sync of the Secret volume (about a minute)."""


def _metrics_verify(address: str, ca: str, server_name: str) -> bool:
    """True when the certificate served at address verifies with ca (PEM) for server_name."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cadata=ca)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=server_name):
                return True
        except ssl.SSLCertVerificationError:
            return False


def test_after_the_rotation_every_agents_metrics_verify_with_the_published_ca_that_signs_now(
    kube: testkit.Kube, rotating: tuple[env.Operator, list[env.Device]]
) -> None:
    """Run after the rotation above: each agent serves a metrics leaf of the CA that signs now (a CA the
    rotation made: the next rotation may have begun, the CA being always due), for the agents' metrics
    Service, and hsm-metrics-ca publishes that CA, without a restart."""
    op, devices = rotating
    namespace = op.namespace
    server_name = f"hsm-agent-metrics.{namespace}.svc"

    def verifies(address: str) -> bool:
        signing = secret_data(kube, namespace, "hsm-manager-ca")["tls.crt"].decode()
        published = env.get(kube, f"/api/v1/namespaces/{namespace}/configmaps/hsm-metrics-ca") or {}
        bundle = (published.get("data") or {}).get("ca.crt", "")
        return signing.strip() in bundle and _metrics_verify(address, signing, server_name)

    for device in devices:
        pod = env.ready_agent_pod(kube, namespace, device.name)
        assert pod is not None
        address = kube.forward(pod["status"]["podIP"], constants.PORT_METRICS, env.OPERATOR_NODE)
        testkit.poll(
            functools.partial(verifies, address),
            METRICS_TLS_TIMEOUT,
            f"{device.name}'s agent metrics to verify with the CA that signs now",
            period=2,
        )
