"""Fixtures: a fresh SoftHSM2 token per test, an in-process agent on 127.0.0.1, a stub, a wait helper."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from hsm_agent import agent, metrics
from hsm_agent.store import secret_store
from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"
SO_PIN = "5678"

Wait = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class SoftToken:
    """A private SoftHSM2 token store: its config, token directory and credentials."""

    root: pathlib.Path
    conf: pathlib.Path
    tokendir: pathlib.Path
    label: str
    pin_file: pathlib.Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def tool(self, *args: str) -> Any:
        """Run token_tool.py (another process on this token) and return its JSON output, if any."""
        done = subprocess.run(
            [sys.executable, str(pathlib.Path(__file__).with_name("token_tool.py")), self.label, PIN, *args],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(done.stdout) if done.stdout.strip() else None

    def init(self, label: str) -> None:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=30,
        )


def make_token(root: pathlib.Path, label: str = "agent") -> SoftToken:
    tokendir = root / "tokens"
    tokendir.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    token = SoftToken(root=root, conf=conf, tokendir=tokendir, label=label, pin_file=pin_file)
    token.init(label)
    return token


#: SoftHSM2 writes a file per object; on this machine's shared disk a create takes 20-30 ms, on tmpfs 0.5 ms.
FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


@pytest.fixture
def token_root() -> Iterator[pathlib.Path]:
    """A private directory on tmpfs (when there is one) for token stores, removed afterwards."""
    with tempfile.TemporaryDirectory(dir=FAST_DIR, prefix="hsm-agent-test-") as root:
        yield pathlib.Path(root)


@pytest.fixture
def softhsm(token_root: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """A fresh token labelled "agent" with PIN 1234 in a private store that this process uses."""
    token = make_token(token_root)
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll condition until it returns something truthy (returned) or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait() -> Wait:
    return wait_until


def store_config(token: SoftToken, **overrides: Any) -> secret_store.StoreConfig:
    settings: dict[str, Any] = {
        "library_path": MODULE,
        "pin_file": str(token.pin_file),
        "token_label": token.label,
        "device_name": "dev-a",
        "probe_interval": 0.5,
        "retry_interval": 0.2,
        "rescan_interval": 3600.0,
        **overrides,
    }
    return secret_store.StoreConfig(**settings)


@pytest.fixture
def start_agent() -> Iterator[Callable[..., agent.Agent]]:
    """Start in-process agents on 127.0.0.1 (store settings as keyword overrides, and the agent's own: TLS,
    metrics); stopped at teardown."""
    started: list[agent.Agent] = []

    def start(token: SoftToken, ready: bool = True, **overrides: Any) -> agent.Agent:
        tls = {
            key: overrides.pop(key)
            for key in ("tls_cert", "tls_key", "tls_client_ca", "metrics")
            if key in overrides
        }
        config = agent.AgentConfig(
            store=store_config(token, **overrides), listen="127.0.0.1:0", health_listen="127.0.0.1:0", **tls
        )
        service = agent.Agent(config)
        service.start()
        started.append(service)
        if ready:
            assert service.wait_ready(15), service.store.message
        return service

    yield start
    for service in reversed(started):
        service.stop()


@pytest.fixture
def running(softhsm: SoftToken, start_agent: Callable[..., agent.Agent]) -> agent.Agent:
    """A ready agent on the test's token."""
    return start_agent(softhsm)


@pytest.fixture
def stub(running: agent.Agent) -> Iterator[hsm_pb2_grpc.HSMAgentStub]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=channel.channel_options()) as chan:
        yield channel.agent_stub(chan)


def _token_reads(service: agent.Agent) -> float:
    return sum(
        sample.value
        for metric in service.metrics.pkcs11_calls.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["operation"].startswith("read")
    )


@pytest.fixture
def token_reads() -> Callable[[agent.Agent], float]:
    """`token_reads(service)`: the PKCS#11 calls an agent made so far to read objects (from its metrics)."""
    return _token_reads


@contextlib.contextmanager
def _logged_in(token: SoftToken, **overrides: Any) -> Iterator[secret_store.SecretStore]:
    store = secret_store.SecretStore(store_config(token, **overrides), metrics.Metrics())
    try:
        store.connect_once()
        yield store
    finally:
        store.stop()


@pytest.fixture
def logged_in() -> Callable[..., Any]:
    """`with logged_in(token) as store:` a store logged in from the test's thread (one login, no upkeep
    threads), stopped at the end of the block: for looking at what a command-line tool left on a token."""
    return _logged_in
