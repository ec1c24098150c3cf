"""Checksums of secret data over an injective canonical encoding, and keyed MACs for display."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping

SHA256_PREFIX = "sha256:"
MAC_PREFIX = "hmac-sha256:"


def _length_prefixed(item: bytes) -> bytes:
    return len(item).to_bytes(8, "big") + item


def canonical_chunks(data: Mapping[str, bytes]) -> Iterator[bytes]:
    """The canonical encoding of data, in pieces.

    Keys sorted by their UTF-8 bytes; every key and value is length-prefixed, so no two different
    mappings encode alike ({"ab": b"c"} and {"a": b"bc"} differ, unlike a plain concatenation).
    """
    yield _length_prefixed(b"hsm-secret-v1")
    yield len(data).to_bytes(8, "big")
    for key in sorted(data, key=lambda k: k.encode()):
        yield _length_prefixed(key.encode())
        yield _length_prefixed(data[key])


def canonical_encoding(data: Mapping[str, bytes]) -> bytes:
    """The whole canonical encoding of data as one byte string."""
    return b"".join(canonical_chunks(data))


def checksum(data: Mapping[str, bytes]) -> str:
    """``sha256:<hex>`` of the canonical encoding; only for places no untrusted reader sees."""
    digest = hashlib.sha256()
    for chunk in canonical_chunks(data):
        digest.update(chunk)
    return SHA256_PREFIX + digest.hexdigest()


def mac(key: bytes, data: Mapping[str, bytes]) -> str:
    """``hmac-sha256:<hex>`` of the canonical encoding under key, safe to show in status and annotations."""
    if len(key) < 16:
        raise ValueError("MAC key must be at least 16 bytes")
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for chunk in canonical_chunks(data):
        digest.update(chunk)
    return MAC_PREFIX + digest.hexdigest()


def mac_of_checksum(key: bytes, checksum_value: str) -> str:
    """A keyed MAC of a checksum, so a raw checksum can be compared without being disclosed."""
    if len(key) < 16:
        raise ValueError("MAC key must be at least 16 bytes")
    return MAC_PREFIX + hmac.new(key, checksum_value.encode(), hashlib.sha256).hexdigest()
