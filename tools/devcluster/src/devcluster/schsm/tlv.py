"""BER-TLV as the SmartCard-HSM uses it (one- or two-byte tags, definite lengths). Pure."""

from __future__ import annotations


class MalformedTlv(ValueError):
    """Bytes that do not parse as a sequence of TLVs."""


def encode(tag: int, value: bytes) -> bytes:
    """One TLV: the tag (one or two bytes), the DER length, the value."""
    head = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    size = len(value)
    if size < 0x80:
        length = bytes([size])
    elif size <= 0xFF:
        length = bytes([0x81, size])
    else:
        length = bytes([0x82]) + size.to_bytes(2, "big")
    return head + length + value


def decode(data: bytes) -> list[tuple[int, bytes]]:
    """The TLVs of ``data`` in order, as (tag, value); MalformedTlv when the lengths do not fit."""
    items: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        tag = data[at]
        at += 1
        if tag & 0x1F == 0x1F:
            if at >= len(data):
                raise MalformedTlv("truncated tag")
            tag = (tag << 8) | data[at]
            at += 1
        if at >= len(data):
            raise MalformedTlv("missing length")
        size = data[at]
        at += 1
        if size & 0x80:
            count = size & 0x7F
            if count not in (1, 2, 3) or at + count > len(data):
                raise MalformedTlv("bad length")
            size = int.from_bytes(data[at : at + count], "big")
            at += count
        if at + size > len(data):
            raise MalformedTlv("value runs past the end")
        items.append((tag, data[at : at + size]))
        at += size
    return items


def find(data: bytes, tag: int) -> bytes | None:
    """The value of the first top-level ``tag`` in ``data``, or None."""
    for found, value in decode(data):
        if found == tag:
            return value
    return None
