"""Storage format v2: what is stored where on the token. Pure: no PKCS#11 and no encoding here.

Every object is a private token CKO_DATA object whose CKA_APPLICATION names its role:

- a **record** holds one generation of one secret, label ``<stem>@<generation>``: the header (path,
  version, keys, checksum, metadata, writer, time) and the body, the secret's data. A record is the one
  object of a secret unless its encoding passes the device's object size; then the body goes into
- **chunks**, labels ``<stem>@<generation>#<i>``, written before the record that names their count;
- the **ledger** holds every tombstone of the token in one object (plus chunks when large), label
  ``ledger@<generation>``, rewritten create-then-destroy like a record.

The stem is the path, or ``~`` and a digest of it when a label would pass MAX_LABEL_BYTES. Readers take
the highest-ranked complete generation of a path (a tombstone in the ledger competes with records).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import secrets
from collections.abc import Mapping

FORMAT_VERSION = 2
APPLICATION_RECORD = "hsm-secrets-operator/record"
APPLICATION_CHUNK = "hsm-secrets-operator/chunk"
APPLICATION_LEDGER = "hsm-secrets-operator/ledger"

#: OpenSC's PKCS#15 layer keeps at most this many bytes of a label.
MAX_LABEL_BYTES = 254
DIGEST_PREFIX = "~"
LEDGER_STEM = "ledger"
GENERATION_HEX = 16
#: Room kept in a label for "@<generation>#<chunk index>" (chunk indexes stay under 10**6).
_SUFFIX_BYTES = 1 + GENERATION_HEX + 1 + 6
_LABEL = re.compile(rf"^(?P<stem>.+)@(?P<generation>[0-9a-f]{{{GENERATION_HEX}}})(?:#(?P<index>[0-9]+))?$")


@dataclasses.dataclass(frozen=True)
class Metadata:
    """User metadata carried with a secret to every device."""

    description: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    format: str = ""
    data_type: str = ""
    created_at: str = ""
    source: str = ""


@dataclasses.dataclass(frozen=True)
class Head:
    """One generation of a path as the index holds it: a record's header, or a tombstone of the ledger."""

    path: str
    version: int
    generation: str
    keys: tuple[str, ...]
    checksum: str
    deleted: bool
    metadata: Metadata
    writer: str
    time: str
    chunks: int = 0
    """Chunk objects holding the body; 0 when the body is inline in the record."""
    size: int = 0
    """Bytes of the encoded body."""
    format: int = FORMAT_VERSION

    def rank(self) -> tuple[int, str, str, str]:
        """Sort key of competing generations of a path: (version, time, writer), then generation for ties."""
        return (self.version, self.time, self.writer, self.generation)


@dataclasses.dataclass(frozen=True)
class Ledger:
    """The token's tombstones, one per deleted path, in path order."""

    generation: str
    sequence: int
    """Grows with every rewrite: the highest complete ledger on the token is the current one."""
    tombstones: tuple[Head, ...]
    chunks: int = 0
    size: int = 0


class UnknownFormat(ValueError):
    """An object written in a format this agent does not know; it is left untouched."""


def new_generation() -> str:
    """A fresh generation id: random, so an interrupted write never collides with the next one."""
    return secrets.token_hex(GENERATION_HEX // 2)


def stem(path: str) -> str:
    """The label stem of path's objects: the path, or its digest form when a label would be too long."""
    if len(path.encode()) + _SUFFIX_BYTES <= MAX_LABEL_BYTES:
        return path
    return DIGEST_PREFIX + hashlib.sha256(path.encode()).hexdigest()[:32]


def record_label(path: str, generation: str) -> str:
    return f"{stem(path)}@{generation}"


def ledger_label(generation: str) -> str:
    return f"{LEDGER_STEM}@{generation}"


def chunk_labels(object_label: str, chunks: int) -> tuple[str, ...]:
    """Labels of the chunks of the record (or ledger) labelled object_label."""
    return tuple(f"{object_label}#{i}" for i in range(chunks))


def parse_label(label: str) -> tuple[str, str, int | None] | None:
    """(stem, generation, chunk index or None) of one of our labels; None when label is not one."""
    match = _LABEL.match(label)
    if match is None:
        return None
    index = match.group("index")
    return match.group("stem"), match.group("generation"), None if index is None else int(index)


def split(body: bytes, max_object_size: int) -> list[bytes]:
    """body cut into chunks of at most max_object_size bytes."""
    if max_object_size < 1:
        raise ValueError("max_object_size must be positive")
    return [body[i : i + max_object_size] for i in range(0, len(body), max_object_size)] or [b""]


def parse_time(text: str) -> datetime.datetime | None:
    """The instant of an RFC 3339 time, or None when it does not parse."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def tombstone_expired(head: Head, at: datetime.datetime, retention: float) -> bool:
    """True when head is a tombstone older than retention seconds (undated tombstones never expire)."""
    if not head.deleted:
        return False
    written = parse_time(head.time)
    return written is not None and (at - written).total_seconds() > retention
