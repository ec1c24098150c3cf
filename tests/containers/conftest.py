"""Container-level tests of our images: podman's Docker API on a socket of our own, driven by testcontainers.

The images come from ``make images`` (tag ``e2e``): a missing image or podman fails the tests, never skips.
Containers use the host network and listen on 127.0.0.1, so podman creates no bridge or firewall rule.
"""

import dataclasses
import http.client
import json
import os
import pathlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import grpc
import pytest
from testcontainers.core import config as tc_config
from testcontainers.core import container as tc_container
from testcontainers.core import wait_strategies

from devcluster import podman_service, ports, process, softhsm, testbed, usbhsm, wait
from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

IMAGES = {
    "agent": "docker.io/library/hsm-agent:e2e",
    "discovery": "docker.io/library/hsm-discovery:e2e",
    "manager": "docker.io/library/hsm-manager:e2e",
}
"""What ``make images`` builds: the agent with its softhsm target, discovery and manager."""

FAST_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
"""SoftHSM2 writes a file per object: tmpfs keeps that fast."""

PIN = "1234"
SO_PIN = "5678"
TOKEN_LABEL = "containers"
PICO_SERIAL = "CONTAINER0000001"

HttpGet = Callable[[int, str], tuple[int, Any]]


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker API for this session, set as DOCKER_HOST with Ryuk off (its image cannot be pulled)."""
    try:
        service = podman_service.start(tmp_path_factory.mktemp("podman"))
    except podman_service.PodmanServiceError as err:
        pytest.fail(f"cannot serve podman's Docker API: {err}", pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", service.docker_host)
        patch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
        # Set on the config object as well: it caches the value, and a Ryuk start would try a registry.
        patch.setattr(tc_config.testcontainers_config, "ryuk_disabled", True)
        try:
            yield service.docker_host
        finally:
            service.stop()


@pytest.fixture(scope="session")
def new_container(docker_host: str) -> Iterator[Callable[[str], tc_container.DockerContainer]]:
    """``new_container("agent")``: an unstarted container of that image on the host network.

    Every container of these tests comes from here. The image must exist (testcontainers would pull a
    missing one, and no registry is reachable: the test fails saying how to build it instead), and the
    host network keeps podman from creating a bridge, CNI firewall chains and veths on the host.
    """
    client = docker.DockerClient(base_url=docker_host)

    def new(name: str) -> tc_container.DockerContainer:
        reference = IMAGES[name]
        try:
            client.images.get(reference)
        except docker.errors.ImageNotFound:
            found = False
        else:
            found = True
        # Failed outside the except block: the API's 404 would only clutter the message.
        if not found:
            pytest.fail(f"image {reference} is missing: build it with `make images`", pytrace=False)
        return tc_container.DockerContainer(reference, network_mode="host")

    yield new
    client.close()


def _get(port: int, path: str) -> tuple[int, Any]:
    # http.client, not urllib: no proxy variable can reroute a loopback request.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if body else None


@pytest.fixture(scope="session")
def http_get() -> HttpGet:
    """``http_get(port, path)``: status and JSON body of a GET on 127.0.0.1."""
    return _get


def logs_of(container: tc_container.DockerContainer) -> str:
    """The container's stdout and stderr, for failure messages."""
    stdout, stderr = container.get_logs()
    return (stdout + stderr).decode(errors="replace")


@pytest.fixture(scope="session")
def container_logs() -> Callable[[tc_container.DockerContainer], str]:
    """``container_logs(container)``: its stdout and stderr as text."""
    return logs_of


# ------------------------------------------------------------------ agent


@dataclasses.dataclass(frozen=True)
class SoftToken:
    """A SoftHSM2 token store on the host, mounted at the same path in the agent's container."""

    root: pathlib.Path
    conf: pathlib.Path
    pin_file: pathlib.Path


def _init_token(conf: pathlib.Path) -> None:
    """Initialise the token, typing the PINs on a terminal so that they never appear in argv."""
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        )
        # softhsm2-util asks for each PIN twice; the terminal keeps the answers until it reads them.
        os.write(primary, f"{SO_PIN}\n{SO_PIN}\n{PIN}\n{PIN}\n".encode())
        output, _ = proc.communicate(timeout=30)
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 0, f"softhsm2-util --init-token failed: {output.decode(errors='replace')}"


@pytest.fixture(scope="module")
def soft_token() -> Iterator[SoftToken]:
    """A fresh token labelled TOKEN_LABEL in a private store on tmpfs, with its PIN in a file."""
    with tempfile.TemporaryDirectory(dir=FAST_DIR, prefix="hsm-containers-") as name:
        root = pathlib.Path(name)
        conf = softhsm.write_conf(root)
        _init_token(conf)
        pin_file = root / "pin"
        pin_file.touch(mode=0o600)
        pin_file.write_text(PIN + "\n")
        yield SoftToken(root, conf, pin_file)


@dataclasses.dataclass(frozen=True)
class RunningAgent:
    container: tc_container.DockerContainer
    stub: hsm_pb2_grpc.HSMAgentStub
    health_port: int


@pytest.fixture(scope="module")
def agent(
    new_container: Callable[[str], tc_container.DockerContainer], soft_token: SoftToken
) -> Iterator[RunningAgent]:
    """The agent image serving soft_token on 127.0.0.1 (host network), ready (logged in, index loaded)."""
    grpc_port, health_port = ports.free_port(), ports.free_port()
    container = (
        new_container("agent")
        .with_volume_mapping(soft_token.root, str(soft_token.root), mode="rw")
        .with_env("SOFTHSM2_CONF", str(soft_token.conf))
        .with_command(
            [
                f"--token-label={TOKEN_LABEL}",
                f"--pin-file={soft_token.pin_file}",
                f"--listen=127.0.0.1:{grpc_port}",
                f"--health-listen=127.0.0.1:{health_port}",
                "--metrics-listen=",
                "--device-name=containers",
            ]
        )
        .waiting_for(wait_strategies.LogMessageWaitStrategy("agent started").with_startup_timeout(60))
    )
    try:
        failure = ""
        try:
            container.start()
            wait.until(lambda: _get(health_port, "/readyz")[0] == 200, 30, "the agent's /readyz")
        except (RuntimeError, TimeoutError) as err:
            # The wait strategy's error leaves out the logs of a container that exited: they say why.
            failure = f"{err}\n{logs_of(container)}"
        if failure:
            pytest.fail(failure, pytrace=False)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=channel.channel_options()) as chan:
            yield RunningAgent(container, channel.agent_stub(chan), health_port)
    finally:
        container.stop()


# ------------------------------------------------------------------ discovery


@dataclasses.dataclass(frozen=True)
class PicoTestbed:
    root: pathlib.Path
    """The testbed directory (UMOCKDEV_DIR)."""
    serial: str
    """USB serial of the Pico HSM plugged into it."""


@pytest.fixture(scope="module")
def pico_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PicoTestbed]:
    """A umockdev testbed with a Pico HSM plugged in, owned by devcluster's testbed driver."""
    run_dir = tmp_path_factory.mktemp("testbed")
    driver = testbed.start_driver(run_dir, "node")
    try:
        description = run_dir / "pico.umockdev"
        description.write_text(usbhsm.description(usbhsm.PICO_HSM, PICO_SERIAL))
        testbed.Testbed(run_dir, "node").add(description)
        root = testbed.root(run_dir, "node")
        # The image runs discovery as an unprivileged user; the testbed is private to root otherwise.
        root.chmod(0o755)
        yield PicoTestbed(root, PICO_SERIAL)
    finally:
        process.stop(driver)
