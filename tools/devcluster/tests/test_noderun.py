"""The node supervisor's wait for containerd: a socket file is not yet a server."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys

import pytest

from devcluster import noderun


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_a_socket_bound_but_not_listening_is_not_ready(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bound.sock"
    proc = sleeper()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(path))  # the file exists from here on
            with pytest.raises(RuntimeError, match="did not accept connections"):
                noderun._wait_for_socket(path, proc, 0.3, "server")
            server.listen()
            noderun._wait_for_socket(path, proc, 5, "server")
    finally:
        proc.kill()
        proc.wait()


def test_a_server_that_exits_first_is_reported(tmp_path: pathlib.Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(RuntimeError, match="exited with 3"):
        noderun._wait_for_socket(tmp_path / "never.sock", proc, 5, "server")
