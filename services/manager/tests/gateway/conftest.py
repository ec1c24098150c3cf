"""A real hsm-agent on a fresh SoftHSM2 token, serving mTLS with a test CA's leaf, and the registry to it."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator

import pytest

from devcluster import ports
from hsm_manager.gateway import client, endpoints, pki
from hsmproto import channel

from .. import fakes
from ..polling import wait_until

AGENT = "hsm-agent-link"
PIN = "1234"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a local http URL
            return bool(answer.status == 200)
    except OSError:
        return False


class StaticTLS:
    """The registry's TLS source, without the Secret it reads in a cluster."""

    def __init__(self, tls: channel.ClientTLS) -> None:
        self.tls = tls

    def current(self) -> channel.ClientTLS:
        return self.tls


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca()


@pytest.fixture(scope="module")
def agent(ca: pki.KeyPair) -> Iterator[endpoints.AgentEndpoint]:
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
        grpc_port, health_port = ports.free_port(), ports.free_port()
        command = [
            sys.executable, "-m", "hsm_agent",
            "--token-label=link", f"--pin-file={root / 'pin'}",
            f"--listen=127.0.0.1:{grpc_port}", f"--health-listen=127.0.0.1:{health_port}",
            "--metrics-listen=",
            f"--tls-cert={root / 'tls.crt'}", f"--tls-key={root / 'tls.key'}",
            f"--tls-client-ca={root / 'ca.crt'}",
            f"--device-name={AGENT}", "--pcscd=never",
        ]  # fmt: skip
        with (root / "agent.log").open("w") as log:
            proc = subprocess.Popen(command, env=env, stderr=log)
        try:
            wait_until(lambda: _ready(f"http://127.0.0.1:{health_port}/readyz"), 30, "the agent to be ready")
            yield endpoints.AgentEndpoint("hsm", "ns", AGENT, "", "n1", f"127.0.0.1:{grpc_port}")
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def registry(ca: pki.KeyPair) -> Iterator[endpoints.AgentRegistry]:
    """The production directory; its Kubernetes client only serves endpoints(), which these tests name."""
    issued = pki.issue(ca, pki.CLIENT_NAME, client=True)
    found = endpoints.AgentRegistry(
        fakes.FakeKube(), StaticTLS(channel.ClientTLS(ca.cert, issued.cert, issued.key)), timeout=5
    )
    yield found
    found.close()


@pytest.fixture
def agent_client(registry: endpoints.AgentRegistry, agent: endpoints.AgentEndpoint) -> client.AgentClient:
    return registry.client(agent)
