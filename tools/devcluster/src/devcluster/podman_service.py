"""``podman system service`` on a Unix socket of our own: the Docker API that testcontainers talks to."""

import dataclasses
import http.client
import os
import pathlib
import shutil
import signal
import socket
import time
from collections.abc import Mapping

from . import podman, process

SOCKET_NAME = "podman.sock"
LOG_NAME = "podman-service.log"


class PodmanServiceError(RuntimeError):
    """The service did not start, did not answer, or would not stop."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (the Docker API's transport); the host name only fills the Host header."""

    def __init__(self, path: pathlib.Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def ping(path: pathlib.Path, timeout: float = 2.0) -> bool:
    """Whether the API on the socket at ``path`` answers ``GET /_ping`` with 200."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().status == http.client.OK
    except OSError:
        return False
    finally:
        connection.close()


@dataclasses.dataclass(frozen=True)
class Service:
    """A running ``podman system service`` that this process started."""

    started: process.Started
    socket: pathlib.Path

    @property
    def docker_host(self) -> str:
        """The service as ``DOCKER_HOST`` names it."""
        return f"unix://{self.socket}"

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the service's own process (by PID, never its group or others) and remove the socket."""
        # Signalled alone: containers it started run under conmon in sessions of their own anyway.
        for sig, wait_for in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not process.is_alive(self.started):
                break
            try:
                os.kill(self.started.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_for
            while process.is_alive(self.started) and time.monotonic() < deadline:
                time.sleep(0.05)
        if process.is_alive(self.started):
            raise PodmanServiceError(f"podman system service (pid {self.started.pid}) survived SIGKILL")
        self.socket.unlink(missing_ok=True)


def start(directory: pathlib.Path, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Service:
    """Start the service on ``directory``/podman.sock (log beside it) and return once it answers a ping.

    ``env`` defaults to ``podman.environment()``: the project's containers.conf and storage, the one the
    images are built into (any other storage would not have them).
    """
    if env is None:
        env = podman.environment()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SOCKET_NAME
    if path.exists():
        raise PodmanServiceError(f"{path} exists: another service may be using it")
    if shutil.which("podman", path=env.get("PATH")) is None:
        raise PodmanServiceError("podman is not on PATH (Debian package podman)")
    argv = ["podman", "system", "service", "--time=0", f"unix://{path}"]
    started = process.start("podman-service", argv, directory / LOG_NAME, env=env)
    service = Service(started, path)

    # A loop of its own, not wait.until: a service that exits must fail at once, not at the deadline.
    deadline = time.monotonic() + timeout
    while not (path.exists() and ping(path)):
        if not process.is_alive(started):
            service.stop()
            raise PodmanServiceError(f"podman system service exited:\n{process.log_tail(started)}")
        if time.monotonic() >= deadline:
            service.stop()
            raise PodmanServiceError(
                f"podman system service did not answer /_ping within {timeout:.0f} s:\n"
                f"{process.log_tail(started)}"
            )
        time.sleep(0.05)
    return service
