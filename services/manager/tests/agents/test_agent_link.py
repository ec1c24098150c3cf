"""The registry's mTLS channel and the WatchSecrets stream against a real hsm-agent on a SoftHSM2 token."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import kubernetes
import pytest

from hsm_common import checksum
from hsm_manager import kube
from hsm_manager.agents import registry, watch
from hsm_manager.gateway import pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

AGENT = "hsm-agent-link"
PIN = "1234"


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StaticTLS:
    def __init__(self, tls: channel.ClientTLS) -> None:
        self.tls = tls

    def current(self) -> channel.ClientTLS:
        return self.tls


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a local http URL
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca()


@pytest.fixture(scope="module")
def agent(ca: pki.KeyPair) -> Iterator[registry.AgentEndpoint]:
    """hsm-agent serving a fresh token with a leaf of our CA, requiring client certificates."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as raw:
        root = pathlib.Path(raw)
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "link", "--pin", PIN, "--so-pin", "5678"],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        leaf = pki.issue(ca, AGENT, client=False)
        for name, content in {
            "pin": PIN.encode(),
            "tls.crt": leaf.cert,
            "tls.key": leaf.key,
            "ca.crt": ca.cert,
        }.items():
            (root / name).write_bytes(content)
        grpc_port, health_port = free_port(), free_port()
        command = [
            sys.executable, "-m", "hsm_agent",
            "--token-label=link", f"--pin-file={root / 'pin'}",
            f"--listen=127.0.0.1:{grpc_port}", f"--health-listen=127.0.0.1:{health_port}",
            f"--tls-cert={root / 'tls.crt'}", f"--tls-key={root / 'tls.key'}",
            f"--tls-client-ca={root / 'ca.crt'}",
            f"--device-name={AGENT}", "--pcscd=never",
        ]  # fmt: skip
        with (root / "agent.log").open("w") as log:
            proc = subprocess.Popen(command, env=env, stderr=log)
        try:
            poll(lambda: ready(f"http://127.0.0.1:{health_port}/readyz"), 30, "the agent to be ready")
            yield registry.AgentEndpoint("hsm", "ns", AGENT, "", "n1", f"127.0.0.1:{grpc_port}")
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def agents(ca: pki.KeyPair) -> Iterator[registry.AgentRegistry]:
    client = pki.issue(ca, pki.CLIENT_NAME, client=True)
    # stub() never calls the API server; the Kube only serves endpoints(), which these tests do not use.
    found = registry.AgentRegistry(
        kube.Kube(kubernetes.client.ApiClient()),
        StaticTLS(channel.ClientTLS(ca.cert, client.cert, client.key)),
    )
    yield found
    found.close()


def write(agents: registry.AgentRegistry, endpoint: registry.AgentEndpoint, path: str, value: bytes) -> int:
    request = hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data={"k": value}))
    return int(agents.stub(endpoint).WriteSecret(request, timeout=10).version)


def test_registry_channel_reaches_the_agent_over_mtls(
    agents: registry.AgentRegistry, agent: registry.AgentEndpoint
) -> None:
    version = write(agents, agent, "ns/link-a", b"v1")
    answer = agents.stub(agent).GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/link-a"), timeout=5)
    assert (answer.version, answer.checksum) == (version, checksum.checksum({"k": b"v1"}))


def test_registry_reuses_one_channel_per_agent(
    agents: registry.AgentRegistry, agent: registry.AgentEndpoint
) -> None:
    assert agents.stub(agent) is agents.stub(agent)


def test_agent_under_another_name_is_refused(
    agents: registry.AgentRegistry, agent: registry.AgentEndpoint
) -> None:
    impostor = registry.AgentEndpoint("hsm", "ns", "hsm-agent-other", "", "n1", agent.address)
    with pytest.raises(grpc.RpcError):
        agents.stub(impostor).Health(hsm_pb2.HealthRequest(), timeout=5)


def test_watch_delivers_a_write_within_a_second(
    agents: registry.AgentRegistry, agent: registry.AgentEndpoint
) -> None:
    seen: list[hsm_pb2.SecretEvent] = []
    connected = threading.Event()
    streams = watch.Watches(
        agents, lambda _e, event: seen.append(event), lambda _e, up: up and connected.set()
    )
    streams.reconcile([agent])
    try:
        write(agents, agent, "ns/link-before", b"x")  # the stream's first message may be this or the snapshot
        poll(connected.is_set, 10, "the watch stream")
        started = time.monotonic()
        version = write(agents, agent, "ns/link-watched", b"v1")
        poll(
            lambda: any(e.path == "ns/link-watched" and e.version == version for e in seen),
            5,
            "the change event",
        )
        assert time.monotonic() - started < 1.0
    finally:
        streams.stop_all()
