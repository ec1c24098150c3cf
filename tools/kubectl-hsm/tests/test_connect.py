"""The port-forward helper against stand-in kubectl scripts: the forwarding address, kubectl's own errors."""

from __future__ import annotations

import pathlib
import stat

import pytest

from kubectl_hsm import connect


def _kubectl(directory: pathlib.Path, body: str) -> None:
    script = directory / "kubectl"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_the_url_is_the_port_kubectl_forwards_from(bin_dir: pathlib.Path) -> None:
    _kubectl(bin_dir, 'echo "Forwarding from 127.0.0.1:41234 -> 8090"; exec sleep 30')
    with connect.port_forward(None, None, "ns", "hsm-api", 8090) as url:
        assert url == "https://127.0.0.1:41234"


def test_a_refused_port_forward_reports_kubectl_s_error(bin_dir: pathlib.Path) -> None:
    _kubectl(bin_dir, "echo 'Error from server (Forbidden): services \"hsm-api\" is forbidden' >&2; exit 1")
    expected = r'failed: Error from server \(Forbidden\): services "hsm-api"'
    with pytest.raises(connect.ConnectError, match=expected), connect.port_forward(None, None, "ns", "s", 1):
        pass


def test_a_silent_kubectl_failure_reports_its_exit_status(bin_dir: pathlib.Path) -> None:
    _kubectl(bin_dir, "exit 3")
    expected = "kubectl exited with status 3"
    with pytest.raises(connect.ConnectError, match=expected), connect.port_forward(None, None, "ns", "s", 1):
        pass
