"""Bad certificates between the manager and an agent on the devcluster: refused, said clearly, repaired.

An agent whose Secret is given a leaf of a foreign CA, or an expired leaf of the manager's own CA, serves it
once its kubelet syncs the volume (the agent reloads at the next handshake; the test makes the kubelet sync
the pod by changing an annotation of it rather than wait a minute or more for its periodic sync). The
manager refuses it, and the HSMSecret's status, the HSMPool's AgentsAnswering condition and the operator's
log say what is wrong with it rather than a gRPC string; the operator then issues the agent a good leaf, the
kubelet brings it, and the sync recovers without the agent restarting. The operator is stopped while the
bad leaf is put in place: running, it would repair the Secret before the kubelet ever showed the agent the
bad one (its CA rotation rounds check every agent's Secret). Each test prints its timeline.

A client presenting a foreign or an expired client certificate is refused by the agent, whose log says why
(gRPC's own handshake line: grpcio has no hook through which the agent could log it itself).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import pathlib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization

from devcluster import nodes, testkit
from hsm_common import constants
from hsm_manager.gateway import pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

GP = env.GROUP_PATH
DEVICE = "certs"
NOW = datetime.datetime.now(datetime.UTC)
KUBELET_SYNC = 180.0
"""Seconds a kubelet may take to bring a changed Secret into a pod (its periodic pod sync, 60 to 90 s, twice
over for a loaded machine)."""


class Stack:
    def __init__(self, kube: testkit.Kube, op: env.Operator, device: env.Device, tmp: pathlib.Path) -> None:
        self.kube, self.op, self.device = kube, op, device
        self.namespace = op.namespace
        self.tmp = tmp


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("agent-certificates")
    op = env.start_operator(kube, tmp, ("--default-sync-interval=5s",))
    device: env.Device | None = None
    try:
        device = env.deploy_device(op, DEVICE, nodes.name(1))
        device.stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(
                path=f"{op.namespace}/db", secret_data=hsm_pb2.SecretData(data={"k": b"v"})
            ),
            timeout=10,
        )
        kube.client.request(
            "POST", f"{GP}/namespaces/{op.namespace}/hsmsecrets", env.hsmsecret_manifest(op.namespace, "db")
        )
        stack = Stack(kube, op, device, tmp)
        testkit.poll(lambda: status(stack).get("syncStatus") == "InSync", 60, "the HSMSecret InSync")
        yield stack
    finally:
        env.remove_operator(op)
        if device is not None:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)


def secret_data(stack: Stack, name: str) -> dict[str, bytes]:
    found = stack.kube.client.get(f"/api/v1/namespaces/{stack.namespace}/secrets/{name}")
    return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}


def status(stack: Stack) -> dict[str, Any]:
    found = env.get(stack.kube, f"{GP}/namespaces/{stack.namespace}/hsmsecrets/db") or {}
    result: dict[str, Any] = found.get("status") or {}
    return result


def answering(stack: Stack) -> dict[str, Any]:
    """The HSMPool's AgentsAnswering condition ({} before the operator's first periodic pass)."""
    found = env.get(stack.kube, f"{GP}/namespaces/{stack.namespace}/hsmpools/{DEVICE}-pool") or {}
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "AgentsAnswering"), {})


def agent_pod(stack: Stack) -> dict[str, Any]:
    pod = env.ready_agent_pod(stack.kube, stack.namespace, DEVICE)
    assert pod is not None, "no Ready agent pod"
    return pod


def identity(pod: dict[str, Any]) -> tuple[str, int]:
    """The pod's uid and its containers' restarts."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return pod["metadata"]["uid"], sum(c.get("restartCount", 0) for c in statuses)


def agent_name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["app.kubernetes.io/instance"])


def served(stack: Stack, pod: dict[str, Any]) -> bytes:
    """The certificate (DER) the agent pod serves now, b"" when it cannot be reached.

    A TLS handshake that verifies nothing, presenting the manager's client leaf (so the agent completes it):
    the agent re-reads its files at each handshake, so this is what it serves right now.
    """
    client = manager_client(stack)
    cert, key = stack.tmp / "client.crt", stack.tmp / "client.key"
    cert.write_bytes(client.cert)
    key.write_bytes(client.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(cert, key)
    host, port = env.forwarded(stack.kube, pod["status"]["podIP"], constants.PORT_AGENT_GRPC).rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True) or b""
    except OSError:  # ssl.SSLError included: the agent is not answering yet
        return b""


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def manager_ca(stack: Stack) -> pki.KeyPair:
    data = secret_data(stack, pki.CA_SECRET)
    return pki.KeyPair(data["tls.crt"], data["tls.key"])


def manager_client(stack: Stack) -> pki.KeyPair:
    data = secret_data(stack, pki.CLIENT_SECRET)
    return pki.KeyPair(data["tls.crt"], data["tls.key"])


def signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca_pem)
        )
    except (ValueError, TypeError, exceptions.InvalidSignature):
        return False
    return True


def serves(stack: Stack, pod: dict[str, Any], cert: bytes) -> Callable[[], bool]:
    """A poll condition: the agent serves cert (its kubelet made to sync the pod meanwhile)."""
    return testkit.syncing_pods(
        stack.kube.client,
        stack.namespace,
        [pod["metadata"]["name"]],
        lambda: served(stack, pod) == der(cert),
    )


class Timeline:
    def __init__(self, title: str) -> None:
        self.title = title
        self.start = time.monotonic()
        self.lines: list[str] = []

    def record(self, step: str) -> None:
        self.lines.append(f"{time.monotonic() - self.start:6.1f}s  {step}")

    def report(self, config: pytest.Config) -> None:
        """Print the timeline past pytest's capture: it is the test's report, wanted on every run."""
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print("\n".join(["", self.title, *self.lines]), flush=True)


def serve_bad_leaf_then_recover(stack: Stack, bad: pki.KeyPair, said: str, config: pytest.Config) -> None:
    """Put bad into the agent's Secret with the operator stopped, wait until the agent serves it, start the
    operator; assert the status and the log say ``said``, then that everything recovers without a restart."""
    kube, namespace = stack.kube, stack.namespace
    pod = agent_pod(stack)
    before = identity(pod)
    agent = agent_name(pod)
    timeline = Timeline(f"agent serving a bad leaf ({said}):")
    stack.op.stop()
    timeline.record("operator stopped")
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/{agent}-tls"
    secret = kube.client.get(secret_path)
    secret["data"] |= {
        "tls.crt": base64.b64encode(bad.cert).decode(),
        "tls.key": base64.b64encode(bad.key).decode(),
    }
    kube.client.request("PUT", secret_path, secret)
    timeline.record("bad leaf written into the agent's Secret")
    testkit.poll(serves(stack, pod, bad.cert), KUBELET_SYNC, "the agent to serve the bad leaf", 1.0)
    timeline.record("the agent serves it (kubelet synced the volume, the agent reloaded)")
    log_before = stack.op.log.read_text()
    stack.op.start()
    timeline.record("operator started")
    testkit.poll(
        lambda: said in (status(stack).get("lastError") or ""), 60, f"the status to say {said!r}", 0.5
    )
    found = status(stack)
    timeline.record(f"HSMSecret status: {found['syncStatus']}: {found['lastError']}")
    assert found["syncStatus"] == "Error"
    testkit.poll(
        lambda: any(
            '"event":"agent certificate refused"' in line and said in line
            for line in stack.op.log.read_text()[len(log_before) :].splitlines()
        ),
        30,
        "the operator's log to say it",
    )
    timeline.record("operator log: agent certificate refused")
    # The kubelet brings the good leaf at its periodic sync, a minute or more away (the test makes it sync
    # the pod only once the leaf is re-issued), so the pool's periodic pass (every 10 s) sees the refusal too.
    refused = testkit.poll(
        lambda: (c := answering(stack)).get("status") == "False" and said in c.get("message", "") and c,
        60,
        f"the HSMPool's AgentsAnswering condition to say {said!r}",
        0.5,
    )
    assert refused["reason"] == "CertificateRefused"
    assert agent in refused["message"]
    timeline.record(f"HSMPool AgentsAnswering: {refused['reason']}: {refused['message']}")
    ca = manager_ca(stack)

    def reissued() -> bytes:
        cert = secret_data(stack, f"{agent}-tls")["tls.crt"]
        return cert if cert != bad.cert and signed_by(cert, ca.cert) else b""

    good = testkit.poll(
        reissued,
        60,
        "the operator to issue the agent a good leaf",
        0.5,
    )
    timeline.record("operator re-issued the agent's leaf")
    testkit.poll(serves(stack, pod, good), KUBELET_SYNC, "the agent to serve it", 1.0)
    timeline.record("the agent serves the good leaf")
    testkit.poll(lambda: status(stack).get("syncStatus") == "InSync", 60, "the HSMSecret InSync again", 0.5)
    timeline.record("HSMSecret InSync")
    testkit.poll(lambda: answering(stack).get("status") == "True", 60, "the HSMPool's agents answering", 0.5)
    timeline.record("HSMPool AgentsAnswering True")
    timeline.report(config)
    assert identity(agent_pod(stack)) == before


def agent_log(stack: Stack, pod: dict[str, Any]) -> str:
    return stack.kube.kubectl("logs", "-n", stack.namespace, pod["metadata"]["name"])


@pytest.mark.parametrize(
    ("presented", "reason"),
    [("foreign", "unable to get local issuer certificate"), ("expired", "certificate has expired")],
    ids=["foreign", "expired"],
)
def test_a_client_with_a_foreign_or_expired_certificate_is_refused_and_the_agent_log_says_why(
    stack: Stack, presented: str, reason: str
) -> None:
    pod = agent_pod(stack)
    ca = manager_ca(stack)
    if presented == "foreign":
        leaf = pki.issue(pki.new_ca(), pki.CLIENT_NAME, client=True)
    else:
        leaf = pki.issue(
            ca,
            pki.CLIENT_NAME,
            client=True,
            now=NOW - datetime.timedelta(days=2),
            lifetime=datetime.timedelta(days=1),
        )
    said_before = agent_log(stack, pod).count(reason)
    tls = channel.ClientTLS(ca.cert, leaf.cert, leaf.key, server_name=agent_name(pod))
    address = env.forwarded(stack.kube, pod["status"]["podIP"], constants.PORT_AGENT_GRPC)
    with channel.open_channel(address, tls) as opened, pytest.raises(grpc.RpcError) as refused:
        channel.agent_stub(opened).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    def said() -> str:
        text = agent_log(stack, pod)
        return text if text.count(reason) > said_before else ""

    log = testkit.poll(
        said,
        30,
        f"the agent to log {reason!r}",
    )
    line = next(line for line in reversed(log.splitlines()) if reason in line)
    print(f"\nagent log, {presented} client certificate: {line}")
    assert "Handshake failed" in line
    for secret in ("PRIVATE KEY", env.PIN, leaf.key.decode().splitlines()[1]):
        assert secret not in log


def test_an_agent_serving_a_leaf_of_a_foreign_ca_is_refused_said_clearly_and_repaired(
    stack: Stack, pytestconfig: pytest.Config
) -> None:
    foreign = pki.new_ca()
    agent = agent_name(agent_pod(stack))
    serve_bad_leaf_then_recover(
        stack,
        pki.issue(foreign, agent, client=False),
        "its TLS certificate is not signed by the manager's CA",
        pytestconfig,
    )


def test_an_agent_serving_an_expired_leaf_is_refused_said_clearly_and_repaired(
    stack: Stack, pytestconfig: pytest.Config
) -> None:
    ca = manager_ca(stack)
    agent = agent_name(agent_pod(stack))
    expired = pki.issue(
        ca, agent, client=False, now=NOW - datetime.timedelta(days=2), lifetime=datetime.timedelta(days=1)
    )
    # The operator reads the refused leaf's notAfter by a second handshake that does not verify it.
    until = x509.load_pem_x509_certificate(expired.cert).not_valid_after_utc
    said = f"its TLS certificate has expired (on {until:%Y-%m-%d %H:%M:%S} UTC)"
    serve_bad_leaf_then_recover(stack, expired, said, pytestconfig)
