"""pcscd supervision with the real Debian pcscd: start, restart after it dies, stop."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest

from hsm_agent import modules, pcscd

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="pcscd -f needs root"),
    pytest.mark.skipif(not os.path.exists(pcscd.PCSCD), reason="pcscd is not installed"),
    pytest.mark.skipif(os.path.exists(pcscd.SOCKET), reason="another pcscd owns the socket"),
]


def test_opensc_module_is_recognised_by_its_file_name() -> None:
    assert modules.is_opensc("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
    assert not modules.is_opensc("/usr/lib/softhsm/libsofthsm2.so")


def test_pcscd_is_restarted_after_it_dies_and_stopped_on_request(wait) -> None:
    supervisor = pcscd.Supervisor(min_backoff=0.05)
    supervisor.start()
    try:
        first = supervisor.pid
        assert first is not None
        assert pathlib.Path(pcscd.SOCKET).exists()
        os.kill(first, signal.SIGKILL)
        wait(lambda: supervisor.restarts == 1 and supervisor.pid != first, timeout=10)
        wait(lambda: pathlib.Path(pcscd.SOCKET).exists(), timeout=10)
    finally:
        supervisor.stop()
    assert not supervisor.running
    assert not pathlib.Path(pcscd.SOCKET).exists()
