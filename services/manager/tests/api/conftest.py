"""Fixtures: SoftHSM2 tokens, real hsm-agent processes and a real gunicorn serving the API on 127.0.0.1."""

from __future__ import annotations

import base64
import collections.abc
import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from devcluster import ports
from hsm_manager.api import config as api_config

from ..polling import wait_until

HERE = pathlib.Path(__file__).parent
PIN = "123456"
DEVICE_NAMESPACE = "hsm-system"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclasses.dataclass
class Agent:
    """A real hsm-agent process on its own SoftHSM2 token."""

    name: str
    workdir: pathlib.Path
    port: int
    health_port: int
    pin_file: pathlib.Path
    process: subprocess.Popen[bytes] | None = None
    flags: tuple[str, ...] = ()
    """Extra command-line flags of the agent (e.g. an object budget)."""
    ready_at: float = 0.0
    """time.monotonic() when the agent last became ready."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "SOFTHSM2_CONF": str(self.workdir / "softhsm2.conf")}
        log = (self.workdir / "agent.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "hsm_agent",
                "--token-label", self.name,
                "--pin-file", str(self.pin_file),
                "--listen", self.address,
                "--health-listen", f"127.0.0.1:{self.health_port}",
                "--metrics-listen", "",
                "--device-name", self.name,
                "--pcscd", "never",
                "--log-level", "warning",
                *self.flags,
            ],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        wait_until(self._ready, 20, f"agent {self.name} ready")
        self.ready_at = time.monotonic()

    def token_objects(self) -> int:
        """Objects on the agent's token, whoever wrote them, counted by another process over PKCS#11."""
        return int(self._token_tool("count"))

    def add_foreign_object(self) -> None:
        """One data object on the token as another tool would leave it."""
        self._token_tool("add")

    def _token_tool(self, command: str) -> str:
        result = subprocess.run(
            [sys.executable, str(HERE / "token_objects.py"), self.name, command],
            env={**os.environ, "SOFTHSM2_CONF": str(self.workdir / "softhsm2.conf")},
            input=PIN, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"agent {self.name} exited: {(self.workdir / 'agent.log').read_text()[-2000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{self.health_port}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def make_agent(root: pathlib.Path, name: str) -> Agent:
    workdir = root / name
    tokens = workdir / "tokens"
    tokens.mkdir(parents=True)
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", name, "--pin", PIN, "--so-pin", "12345678"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=30,
    )
    pin_file = workdir / "pin"
    pin_file.write_text(PIN)
    return Agent(name, workdir, ports.free_port(), ports.free_port(), pin_file)


@dataclasses.dataclass
class Api:
    """A gunicorn serving the API with the test wiring; tokens name the users of the test table."""

    url: str
    metrics_port: int | None
    """The HTTPS metrics endpoint's port, when the API serves one."""
    log: pathlib.Path
    process: subprocess.Popen[bytes]
    verify: str | bool = True
    """What requests verifies the server with: the CA file when it serves HTTPS."""

    def call(self, method: str, route: str, token: str | None = "admin", **kwargs: Any) -> requests.Response:  # noqa: S107
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("verify", self.verify)
        return requests.request(method, f"{self.url}{route}", headers=headers, timeout=30, **kwargs)

    def audit_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{") and '"event":"audit"' in line:
                lines.append(json.loads(line))
        return lines


RULES = {
    "admin": [["*", "hsmsecrets", "*"], ["*", "hsmdevices", "*"]],
    "team-a": [["*", "hsmsecrets", "team-a"]],
    "reader": [["get", "hsmsecrets", "*"], ["list", "hsmsecrets", "*"], ["get", "hsmdevices", "*"]],
    "nobody": [],
    "importer": [["update", "hsmdevices", "*"], ["create", "hsmsecrets", "team-a"]],
}
TOKENS = {
    "admin": "admin",
    "team-a": "team-a",
    "reader": "reader",
    "nobody": "nobody",
    "importer": "importer",
}


@dataclasses.dataclass(frozen=True)
class TLS:
    """Files of a serving certificate for 127.0.0.1 and of the CA that signed it."""

    cert: pathlib.Path
    key: pathlib.Path
    ca: pathlib.Path


def start_api(
    root: pathlib.Path,
    devices: dict[str, list[Agent]],
    workers: int = 2,
    threads: int = 4,
    tls: TLS | None = None,
    reviews: pathlib.Path | None = None,
    pools: list[dict[str, Any]] | None = None,
    copies_mib: int = api_config.ApiConfig.read_copies_mib,
) -> Api:
    """gunicorn serving the test wiring: HTTPS with tls's files, else plain HTTP (these tests are about
    routes, not transport; test_api_tls is about HTTPS); metrics, reviewed with the kubeconfig reviews,
    only when it is given; pools are the HSMPool objects the Kubernetes API would list; copies_mib as
    --read-copies-mib (by default as in production)."""
    config = {
        "tokens": TOKENS,
        "rules": RULES,
        "deviceNamespace": DEVICE_NAMESPACE,
        "devices": {
            d: [{"name": a.name, "address": a.address} for a in agents] for d, agents in devices.items()
        },
        "pinFiles": {d: [str(a.pin_file) for a in agents] for d, agents in devices.items()},
        "pools": pools or [],
        "copiesMiB": copies_mib,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "api.json").write_text(json.dumps(config))
    metrics_dir = root / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    port, metrics_port = ports.free_port(), ports.free_port()
    log = root / "api.log"
    env = {
        **os.environ,
        "HSM_API_TEST_CONFIG": str(root / "api.json"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # A home of its own: whatever the server would leave there stays out of the machine's home.
        "HOME": str(root / "home"),
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "hsm_manager.api.server",
            "--app", "api_test_app:build",
            "--pythonpath", str(HERE),
            "--listen", f"127.0.0.1:{port}",
            "--metrics-listen", f"127.0.0.1:{metrics_port}" if reviews else "",
            *(["--kubeconfig", str(reviews)] if reviews else []),
            "--workers", str(workers),
            "--threads", str(threads),
            *(
                ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key)]
                if tls else ["--insecure-plain-http", "true"]
            ),
        ],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    # The test certificate names localhost (a DNS SAN, as the API's names are), which is 127.0.0.1 here.
    origin = f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
    verify = str(tls.ca) if tls else True
    api = Api(origin, metrics_port if reviews else None, log, process, verify)

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {log.read_text()[-3000:]}")
        try:
            return requests.get(f"{api.url}/api/v1/health", timeout=1, verify=api.verify).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, 20, "gunicorn ready")
    return api


def stop_api(api: Api) -> None:
    api.process.send_signal(signal.SIGTERM)
    try:
        api.process.wait(15)
    except subprocess.TimeoutExpired:
        api.process.kill()
        api.process.wait(5)


@pytest.fixture(scope="module")
def agent_pair(tmp_path_factory: pytest.TempPathFactory) -> collections.abc.Iterator[list[Agent]]:
    """Two real agents on two SoftHSM2 tokens, forming one HSMDevice."""
    root = tmp_path_factory.mktemp("agents")
    pair = [make_agent(root, "hsm-a"), make_agent(root, "hsm-b")]
    for agent in pair:
        agent.start()
    yield pair
    for agent in pair:
        agent.stop()


def pool_object(device: str, phase: str, conditions: list[dict[str, str]]) -> dict[str, Any]:
    """An HSMPool of device as the operator writes it, with two devices of which the phase tells."""
    available = 2 if phase == "Ready" else 1
    return {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMPool",
        "metadata": {
            "name": f"{device}-pool",
            "namespace": DEVICE_NAMESPACE,
            "labels": {"hsm.j5t.io/device": device},
        },
        "spec": {},
        "status": {
            "phase": phase,
            "totalDevices": 2,
            "availableDevices": available,
            "lastAggregationTime": "2026-12-03T10:00:00Z",
            "conditions": [{"lastTransitionTime": "2026-12-03T09:58:00Z", **c} for c in conditions],
        },
    }


#: The HSMPool of the 'pair' device the api fixture serves: Ready, both devices available.
PAIR_POOL = pool_object(
    "pair",
    "Ready",
    [
        {"type": "Ready", "status": "True", "reason": "Ready", "message": "2 devices available"},
        {
            "type": "CapacityLow",
            "status": "False",
            "reason": "ObjectBudgetAvailable",
            "message": "every device has room",
        },
        {
            "type": "AgentsAnswering",
            "status": "True",
            "reason": "AgentsAnswer",
            "message": "every Ready agent answers",
        },
    ],
)


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, agent_pair: list[Agent], module_review_api: Any
) -> collections.abc.Iterator[Api]:
    """gunicorn (2 workers) serving the API for the device 'pair' made of both agents (and its HSMPool),
    and its metrics."""
    served = start_api(
        tmp_path_factory.mktemp("api"),
        {"pair": agent_pair},
        reviews=module_review_api.kubeconfig,
        pools=[PAIR_POOL],
    )
    yield served
    stop_api(served)


@pytest.fixture(scope="module")
def api_without_devices(tmp_path_factory: pytest.TempPathFactory) -> collections.abc.Iterator[Api]:
    """gunicorn (1 worker) serving the API without devices: what is decided before asking a device."""
    served = start_api(tmp_path_factory.mktemp("api"), {}, workers=1, threads=2)
    yield served
    stop_api(served)


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
