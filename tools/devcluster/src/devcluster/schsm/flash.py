"""The card's non-volatile memory: what survives power-off, kept in one file replaced atomically.

Every command that changes the memory writes the whole state to a temporary file, fsyncs it and renames it
over the old one, so a kill -9 of the emulator (a card pulled mid-write) leaves the state before or after
the command, never a mix: what a real card's transactional flash writes promise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

FORMAT = 1

USER_PIN = 0x81
SO_PIN = 0x88


@dataclasses.dataclass
class Pin:
    """A PIN and its retry counter."""

    value: bytes
    tries_max: int
    tries_left: int


@dataclasses.dataclass
class Memory:
    """Everything the card keeps across power cycles."""

    serial: str
    """The device's serial (the certificate holder reference without its 5-digit sequence number)."""
    capacity: int
    """Bytes of flash for files, each file also costing FILE_OVERHEAD."""
    files: dict[int, bytes]
    """Elementary files by their 16-bit identifier."""
    pins: dict[int, Pin]
    """By reference: USER_PIN (absent until the device is initialised) and SO_PIN."""

    FILE_OVERHEAD = 16
    """Bytes a file's header takes in flash (an estimate; a SmartCard-HSM reports nothing finer)."""

    def used(self) -> int:
        return sum(len(data) + self.FILE_OVERHEAD for data in self.files.values())


def to_json(memory: Memory) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "serial": memory.serial,
            "capacity": memory.capacity,
            "files": {f"{fid:04X}": data.hex() for fid, data in sorted(memory.files.items())},
            "pins": {
                f"{ref:02X}": {
                    "value": pin.value.hex(),
                    "tries_max": pin.tries_max,
                    "tries_left": pin.tries_left,
                }
                for ref, pin in sorted(memory.pins.items())
            },
        },
        indent=1,
    )


def from_json(text: str) -> Memory:
    doc = json.loads(text)
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown card state format {doc.get('format')!r}")
    return Memory(
        serial=doc["serial"],
        capacity=doc["capacity"],
        files={int(fid, 16): bytes.fromhex(data) for fid, data in doc["files"].items()},
        pins={
            int(ref, 16): Pin(bytes.fromhex(pin["value"]), pin["tries_max"], pin["tries_left"])
            for ref, pin in doc["pins"].items()
        },
    )


class Flash:
    """The state file of one card."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Memory:
        return from_json(self.path.read_text())

    def save(self, memory: Memory) -> None:
        """Replace the file with ``memory``: the old content or the new, whole, whenever the process dies."""
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with staging.open("w") as out:
            out.write(to_json(memory))
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
