"""Storage format v1: head documents, value labels and chunking. Pure: no PKCS#11 here."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence

import pydantic

from hsm_common import constants

#: OpenSC's PKCS#15 layer keeps at most this many bytes of a label.
MAX_LABEL_BYTES = 254
DIGEST_PREFIX = "~"


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
class KeyLayout:
    """Where one key's value lives: the labels of its chunks, in order, and its total size."""

    key: str
    labels: tuple[str, ...]
    size: int


@dataclasses.dataclass(frozen=True)
class Head:
    """The decoded head of one secret version (a tombstone when deleted)."""

    path: str
    version: int
    generation: str
    keys: tuple[KeyLayout, ...]
    checksum: str
    deleted: bool
    metadata: Metadata
    writer: str
    time: str
    format: int = constants.FORMAT_VERSION

    def value_labels(self) -> tuple[str, ...]:
        """Every value label this head refers to, key by key, chunk by chunk."""
        return tuple(label for layout in self.keys for label in layout.labels)

    def key_names(self) -> tuple[str, ...]:
        return tuple(layout.key for layout in self.keys)

    def rank(self) -> tuple[int, str, str, str]:
        """Sort key of competing heads of a path: (version, time, writer), then generation for ties."""
        return (self.version, self.time, self.writer, self.generation)


class UnknownFormat(ValueError):
    """A head written in a format this agent does not know; it is left untouched."""


class _MetadataDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    description: str = ""
    labels: dict[str, str] = {}
    format: str = ""
    dataType: str = ""  # noqa: N815 - wire name
    createdAt: str = ""  # noqa: N815
    source: str = ""


class _KeyDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    chunks: int = pydantic.Field(ge=1)
    labels: list[str]
    size: int = pydantic.Field(ge=0)


class _HeadDoc(pydantic.BaseModel):
    """The JSON stored as a head's CKA_VALUE (the token is a boundary: other tools may have written it)."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    format: int
    version: int = pydantic.Field(ge=1)
    generation: str = pydantic.Field(pattern=r"^[0-9a-f]{1,64}$")
    keys: dict[str, _KeyDoc]
    checksum: str
    deleted: bool
    metadata: _MetadataDoc = _MetadataDoc()
    writer: str = ""
    time: str = ""


def encode_head(head: Head) -> bytes:
    """Compact JSON of head (its label, the path, is not repeated inside)."""
    doc = _HeadDoc(
        format=head.format,
        version=head.version,
        generation=head.generation,
        keys={
            layout.key: _KeyDoc(chunks=len(layout.labels), labels=list(layout.labels), size=layout.size)
            for layout in head.keys
        },
        checksum=head.checksum,
        deleted=head.deleted,
        metadata=_MetadataDoc(
            description=head.metadata.description,
            labels=dict(head.metadata.labels),
            format=head.metadata.format,
            dataType=head.metadata.data_type,
            createdAt=head.metadata.created_at,
            source=head.metadata.source,
        ),
        writer=head.writer,
        time=head.time,
    )
    return doc.model_dump_json().encode()


def decode_head(path: str, raw: bytes) -> Head:
    """Decode the head stored under label path; UnknownFormat or ValueError when it is not a v1 head."""
    try:
        loose = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"head of {path!r} is not JSON") from error
    if isinstance(loose, dict) and isinstance(loose.get("format"), int) and loose["format"] > 1:
        raise UnknownFormat(f"head of {path!r} has format {loose['format']}")
    try:
        doc = _HeadDoc.model_validate(loose)
    except pydantic.ValidationError as error:
        raise ValueError(f"head of {path!r} is not a valid v1 head: {error.error_count()} errors") from error
    if doc.format != constants.FORMAT_VERSION:
        raise ValueError(f"head of {path!r} has format {doc.format}")
    for key, key_doc in doc.keys.items():
        if key_doc.chunks != len(key_doc.labels):
            raise ValueError(f"head of {path!r}: key {key!r} lists a wrong number of chunks")
    if doc.deleted and doc.keys:
        raise ValueError(f"head of {path!r} is a tombstone with keys")
    meta = doc.metadata
    return Head(
        path=path,
        version=doc.version,
        generation=doc.generation,
        keys=tuple(
            KeyLayout(key=key, labels=tuple(key_doc.labels), size=key_doc.size)
            for key, key_doc in sorted(doc.keys.items())
        ),
        checksum=doc.checksum,
        deleted=doc.deleted,
        metadata=Metadata(
            description=meta.description,
            labels=dict(meta.labels),
            format=meta.format,
            data_type=meta.dataType,
            created_at=meta.createdAt,
            source=meta.source,
        ),
        writer=doc.writer,
        time=doc.time,
    )


def new_generation() -> str:
    """A fresh generation id: random, so an interrupted write never collides with the next one."""
    return secrets.token_hex(8)


def chunk_count(size: int, max_object_size: int) -> int:
    """Objects needed for a value of size bytes (an empty value still takes one object)."""
    if max_object_size < 1:
        raise ValueError("max_object_size must be positive")
    return max(1, -(-size // max_object_size))


def digest_stem(path: str, key: str) -> str:
    """The short stand-in for ``<path>/<key>`` used when a label would pass MAX_LABEL_BYTES."""
    return DIGEST_PREFIX + hashlib.sha256(f"{path}/{key}".encode()).hexdigest()[:32]


def value_labels(path: str, key: str, generation: str, chunks: int) -> tuple[str, ...]:
    """Labels of a key's value objects: ``<path>/<key>@<gen>`` (``#<i>`` per chunk), or the digest form."""
    stem = f"{path}/{key}"
    suffixes = [""] if chunks == 1 else [f"#{i}" for i in range(chunks)]
    labels = [f"{stem}@{generation}{suffix}" for suffix in suffixes]
    if max(len(label.encode()) for label in labels) > MAX_LABEL_BYTES:
        stem = digest_stem(path, key)
        labels = [f"{stem}@{generation}{suffix}" for suffix in suffixes]
    return tuple(labels)


def split(value: bytes, max_object_size: int) -> list[bytes]:
    """value cut into chunks of at most max_object_size bytes (one empty chunk for an empty value)."""
    count = chunk_count(len(value), max_object_size)
    return [value[i * max_object_size : (i + 1) * max_object_size] for i in range(count)]


def plan_values(
    path: str, data: Mapping[str, bytes], generation: str, max_object_size: int
) -> tuple[tuple[KeyLayout, ...], list[tuple[str, bytes]]]:
    """The key layouts of a new head and the (label, bytes) objects to create for them, in key order."""
    layouts: list[KeyLayout] = []
    objects: list[tuple[str, bytes]] = []
    for key in sorted(data):
        value = data[key]
        chunks = split(value, max_object_size)
        labels = value_labels(path, key, generation, len(chunks))
        layouts.append(KeyLayout(key=key, labels=labels, size=len(value)))
        objects.extend(zip(labels, chunks, strict=True))
    return tuple(layouts), objects


def assemble(head: Head, values: Mapping[str, bytes]) -> dict[str, bytes]:
    """The secret data of head from its value objects (by label); KeyError when one is missing."""
    return {layout.key: b"".join(values[label] for label in layout.labels) for layout in head.keys}


def now() -> str:
    """The current time in RFC 3339 (UTC, microseconds) as heads record it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime | None:
    """The instant of an RFC 3339 time, or None when it does not parse."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def highest_first(heads: Sequence[Head]) -> list[Head]:
    """heads ordered from the strongest claim to the weakest."""
    return sorted(heads, key=Head.rank, reverse=True)
