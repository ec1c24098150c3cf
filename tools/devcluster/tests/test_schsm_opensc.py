"""OpenSC's own tools on the emulated SmartCard-HSM in a sandbox: factory-new card to PKCS#11 token."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from devcluster import wait
from devcluster.schsm import sandbox

MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
SO_PIN = "3537363231383830"


@pytest.fixture
def box(tmp_path: pathlib.Path) -> Iterator[sandbox.Sandbox]:
    """A sandbox with a factory-new card (not initialised) and pcscd."""
    reason = sandbox.missing() or (None if os.path.exists(MODULE) else "OpenSC is not installed")
    if reason:
        pytest.skip(reason)
    opened = sandbox.Sandbox(tmp_path / "sandbox")
    opened.open()
    card = sandbox.Card(opened, tmp_path / "card.json", tmp_path / "card.log", "--serial=EMU0042")
    pcscd: subprocess.Popen[str] | None = None
    try:
        card.start()
        pcscd = opened.start(["pcscd", "-f"], tmp_path / "pcscd.log")
        yield opened
    finally:
        if pcscd is not None:
            sandbox.stop(pcscd, 10)
        card.stop()
        opened.close()


def run(box: sandbox.Sandbox, *argv: str) -> str:
    done = subprocess.run(box.enter(argv), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def initialise(box: sandbox.Sandbox, label: str) -> None:
    """sc-hsm-tool's initialisation, once the card is in the reader (the way to set up a new device)."""
    wait.until(lambda: run(box, "opensc-tool", "--atr"), 15, "the card in the reader")
    run(box, "sc-hsm-tool", "--initialize", f"--so-pin={SO_PIN}", "--pin=648219", f"--label={label}")


def test_a_new_card_is_initialised_by_sc_hsm_tool_and_serves_data_objects(box, tmp_path) -> None:
    initialise(box, "fresh")
    slots = run(box, "pkcs11-tool", f"--module={MODULE}", "-L")
    assert "fresh (UserPIN)" in slots
    assert "EMU0042" in slots
    value = tmp_path / "value"
    value.write_bytes(os.urandom(3000))
    login = (f"--module={MODULE}", "--login", "--pin=648219")
    run(box, "pkcs11-tool", *login, f"--write-object={value}", "--type=data", "--label=x", "--private")
    back = tmp_path / "back"
    run(box, "pkcs11-tool", *login, "--read-object", "--type=data", "--label=x", f"--output-file={back}")
    assert back.read_bytes() == value.read_bytes()


def test_pkcs11_init_token_and_init_pin_set_the_label_and_a_new_pin(box) -> None:
    initialise(box, "fresh")
    run(box, "pkcs11-tool", f"--module={MODULE}", "--init-token", "--label=again", f"--so-pin={SO_PIN}")
    so = ("--login", "--login-type=so", f"--so-pin={SO_PIN}")
    run(box, "pkcs11-tool", f"--module={MODULE}", "--init-pin", *so, "--new-pin=123456")
    assert "again (UserPIN)" in run(box, "pkcs11-tool", f"--module={MODULE}", "-L")
    run(box, "pkcs11-tool", f"--module={MODULE}", "--login", "--pin=123456", "--list-objects")
