"""The user PIN, read from a mounted Secret file each time it is needed; never logged or kept in argv."""

from __future__ import annotations

import hashlib
import pathlib
from typing import Protocol

from hsm_agent import errors


class Source(Protocol):
    """Where the store takes the PIN from when it logs in."""

    def read(self) -> str:
        """The PIN; NotLoggedIn when there is none."""
        ...


class PinFile:
    """A PIN file that may change while the agent runs (Kubernetes updates mounted Secrets in place)."""

    def __init__(self, path: str) -> None:
        self._path = pathlib.Path(path)

    def read(self) -> str:
        """The PIN: the file's content without its trailing newline; NotLoggedIn when unreadable or empty."""
        try:
            text = self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise errors.NotLoggedIn(f"cannot read the PIN file: {type(error).__name__}") from error
        pin = text.rstrip("\r\n")
        if not pin:
            raise errors.NotLoggedIn("the PIN file is empty")
        return pin


def fingerprint(pin: str) -> str:
    """A digest that tells two PINs apart without keeping either (used to remember a rejected PIN)."""
    return hashlib.sha256(b"hsm-agent-pin\0" + pin.encode()).hexdigest()


class Given:
    """A PIN a command-line tool already holds (read from its environment or a prompt)."""

    def __init__(self, pin: str) -> None:
        self._pin = pin

    def __repr__(self) -> str:
        return "Given(<pin>)"  # never the PIN, in a traceback or a debugger

    def read(self) -> str:
        if not self._pin:
            raise errors.NotLoggedIn("the PIN is empty")
        return self._pin
