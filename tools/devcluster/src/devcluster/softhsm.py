"""A private SoftHSM2 token store: its config file, tokens made with softhsm2-util, their serials."""

import os
import pathlib
import re
import subprocess

MODULE = pathlib.Path("/usr/lib/softhsm/libsofthsm2.so")


class SoftHsmError(RuntimeError):
    """softhsm2-util failed or did not list a token it made (never carries a PIN)."""


def conf_text(tokens: pathlib.Path) -> str:
    """A SoftHSM2 configuration keeping its tokens in ``tokens``."""
    # The file backend: this build of SoftHSM2 has no sqlite for the db backend.
    return f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"


def write_conf(directory: pathlib.Path, name: str = "softhsm2.conf") -> pathlib.Path:
    """Create ``directory`` with a token dir and a config using it; return the config (``SOFTHSM2_CONF``)."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / name
    conf.write_text(conf_text(tokens))
    return conf


def _util(conf: pathlib.Path, *args: str) -> str:
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    proc = subprocess.run(
        ["softhsm2-util", *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        # Only the subcommand is named: the arguments carry PINs.
        raise SoftHsmError(f"softhsm2-util {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def serial_of(slots: str, label: str) -> str | None:
    """The serial number of the token labelled ``label`` in ``softhsm2-util --show-slots`` output."""
    for block in slots.split("\nSlot "):
        if re.search(rf"^\s*Label:\s*{re.escape(label)}\s*$", block, re.MULTILINE):
            found = re.search(r"^\s*Serial number:\s*(\S+)", block, re.MULTILINE)
            if found:
                return found.group(1)
    return None


def init_token(conf: pathlib.Path, label: str, pin: str, so_pin: str) -> str:
    """Initialise a token labelled ``label`` and return its serial, as ``--show-slots`` reports it."""
    _util(conf, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin)
    serial = serial_of(_util(conf, "--show-slots"), label)
    if serial is None:
        raise SoftHsmError(f"token {label} not listed by softhsm2-util --show-slots")
    return serial
