"""Command and response APDUs (ISO 7816-4, short and extended length). Pure."""

from __future__ import annotations

import dataclasses

# Status words the card answers with.
OK = 0x9000
END_OF_FILE = 0x6282
"""Fewer bytes than asked for were left in the file."""
WRONG_LENGTH = 0x6700
SECURITY_NOT_SATISFIED = 0x6982
AUTH_BLOCKED = 0x6983
CONDITIONS_NOT_SATISFIED = 0x6985
NOT_ALLOWED = 0x6986
WRONG_DATA = 0x6A80
FILE_NOT_FOUND = 0x6A82
NOT_ENOUGH_MEMORY = 0x6A84
WRONG_P1P2 = 0x6A86
REFERENCE_NOT_FOUND = 0x6A88
WRONG_OFFSET = 0x6B00
INS_NOT_SUPPORTED = 0x6D00
CLA_NOT_SUPPORTED = 0x6E00


def tries_left(count: int) -> int:
    """The status word of a failed or queried verification with ``count`` tries left (63Cx)."""
    return 0x63C0 | min(count, 15)


class MalformedApdu(ValueError):
    """Bytes that are no ISO 7816-4 command APDU."""


@dataclasses.dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int
    """Bytes the reader accepts in the answer (0 when none are expected; 256 or 65536 for "all")."""
    extended: bool

    @property
    def p1p2(self) -> int:
        return (self.p1 << 8) | self.p2


def parse(raw: bytes) -> Command:
    """The command of ``raw``; MalformedApdu when its length fields do not match its size."""
    if len(raw) < 4:
        raise MalformedApdu(f"{len(raw)} bytes are no APDU")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", 0, False)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0] != 0:
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:], 0, False)
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1:-1], body[-1] or 256, False)
        raise MalformedApdu("short Lc does not match the data")
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536, True)
    lc = int.from_bytes(body[1:3], "big")
    if lc and len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, body[3:], 0, True)
    if lc and len(body) == 5 + lc:
        return Command(cla, ins, p1, p2, body[3 : 3 + lc], int.from_bytes(body[-2:], "big") or 65536, True)
    raise MalformedApdu("extended Lc does not match the data")


def response(sw: int, data: bytes = b"") -> bytes:
    """The response APDU: data, then the two status bytes."""
    return data + sw.to_bytes(2, "big")
