"""``podman system service`` on our own socket: up once /_ping answers, stopped by PID, failures said."""

import os
import pathlib
import stat
import sys
import time

import docker
import pytest

from devcluster import podman, podman_service, process

# A stand-in for podman that serves /_ping on the socket it is given, as the real service does.
_FAKE_SERVICE = """#!{python}
import http.server, socketserver, sys
path = sys.argv[-1].removeprefix("unix://")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/_ping" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def address_string(self):
        return "unix"

socketserver.UnixStreamServer(path, Handler).serve_forever()
"""


def fake_podman(directory: pathlib.Path, script: str) -> dict[str, str]:
    """An environment whose PATH finds ``script`` as ``podman`` first."""
    directory.mkdir()
    podman = directory / "podman"
    podman.write_text(script)
    podman.chmod(podman.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{directory}:{os.environ.get('PATH', '')}"}


@pytest.fixture
def serving_env(tmp_path: pathlib.Path) -> dict[str, str]:
    return fake_podman(tmp_path / "bin", _FAKE_SERVICE.format(python=sys.executable))


def test_start_returns_once_the_socket_answers_ping(
    tmp_path: pathlib.Path, serving_env: dict[str, str]
) -> None:
    service = podman_service.start(tmp_path / "svc", serving_env, timeout=20)
    try:
        assert service.docker_host == f"unix://{tmp_path / 'svc' / 'podman.sock'}"
        assert podman_service.ping(service.socket)
    finally:
        service.stop()


def test_stop_ends_the_process_and_removes_the_socket(
    tmp_path: pathlib.Path, serving_env: dict[str, str]
) -> None:
    service = podman_service.start(tmp_path / "svc", serving_env, timeout=20)
    service.stop()
    assert not process.is_alive(service.started)
    assert not service.socket.exists()


def test_a_service_that_exits_fails_at_once_with_its_output(tmp_path: pathlib.Path) -> None:
    env = fake_podman(tmp_path / "bin", "#!/bin/sh\necho 'cannot open storage' >&2\nexit 125\n")
    began = time.monotonic()
    with pytest.raises(podman_service.PodmanServiceError, match="cannot open storage"):
        podman_service.start(tmp_path / "svc", env, timeout=60)
    assert time.monotonic() - began < 10


def test_a_missing_podman_is_named(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    with pytest.raises(podman_service.PodmanServiceError, match="podman is not on PATH"):
        podman_service.start(tmp_path / "svc", env)


def test_a_socket_in_use_is_refused(tmp_path: pathlib.Path, serving_env: dict[str, str]) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "podman.sock").touch()
    with pytest.raises(podman_service.PodmanServiceError, match="exists"):
        podman_service.start(tmp_path / "svc", serving_env)


def test_the_real_service_uses_the_projects_storage(tmp_path: pathlib.Path) -> None:
    service = podman_service.start(tmp_path / "svc", timeout=30)
    try:
        client = docker.DockerClient(base_url=service.docker_host)
        try:
            root = client.info()["DockerRootDir"]
        finally:
            client.close()
    finally:
        service.stop()
    assert root == str(podman.cache_dir() / "storage")
