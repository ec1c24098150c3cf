"""Storage format v2 encoding: records, bodies and the ledger as canonical CBOR (RFC 8949). Pure.

CBOR is compact, carries bytes without base64 and describes itself, so a token can be read with any CBOR
tool. The token is a boundary (other tools may have written to it): everything decoded is validated.

Record value: a map of ``format`` (2), ``path``, ``version``, ``generation``, ``time``, ``writer``,
``checksum``, ``keys``, ``metadata`` and either ``body`` (inline) or ``chunks`` and ``size``.
Body: a map of key → value bytes. Ledger value: ``format``, ``generation``, ``sequence``, ``time`` and
``body``/``chunks``+``size`` like a record; its body is a list of tombstones (``path``, ``version``,
``generation``, ``time``, ``writer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import cbor2
import pydantic

from hsm_common import constants, times

from . import layout


class TooLarge(ValueError):
    """A record's header alone does not fit in one object of the device."""


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded record: its head and, when inline, its body."""

    head: layout.Head
    body: bytes | None


@dataclasses.dataclass(frozen=True)
class DecodedLedger:
    ledger: layout.Ledger
    """With its tombstones when the body was inline, else with none until the chunks are read."""
    body: bytes | None


_STRICT = pydantic.ConfigDict(extra="ignore", frozen=True, strict=True)
_GENERATION = rf"^[0-9a-f]{{{layout.GENERATION_HEX}}}$"


class _MetadataDoc(pydantic.BaseModel):
    model_config = _STRICT
    description: str = ""
    labels: dict[str, str] = {}
    format: str = ""
    dataType: str = ""  # noqa: N815 - wire name, as in the API
    createdAt: str = ""  # noqa: N815
    source: str = ""


class _Stored(pydantic.BaseModel):
    """What records and the ledger share: where the body is."""

    model_config = _STRICT
    format: int
    generation: str = pydantic.Field(pattern=_GENERATION)
    time: str = ""
    body: bytes | None = None
    chunks: int = pydantic.Field(default=0, ge=0, le=999_999)
    size: int = pydantic.Field(default=0, ge=0)

    @pydantic.model_validator(mode="after")
    def _one_place(self) -> _Stored:
        if (self.body is None) == (self.chunks == 0):
            raise ValueError("exactly one of body and chunks")
        if self.body is not None and len(self.body) != self.size:
            raise ValueError("size does not match the body")
        return self


class _RecordDoc(_Stored):
    path: str = pydantic.Field(min_length=1, max_length=constants.MAX_PATH_BYTES)
    version: int = pydantic.Field(ge=1)
    writer: str = ""
    checksum: str
    keys: list[str]
    metadata: _MetadataDoc = _MetadataDoc()


class _TombstoneDoc(pydantic.BaseModel):
    model_config = _STRICT
    path: str = pydantic.Field(min_length=1, max_length=constants.MAX_PATH_BYTES)
    version: int = pydantic.Field(ge=1)
    generation: str = pydantic.Field(pattern=_GENERATION)
    time: str = ""
    writer: str = ""


class _LedgerDoc(_Stored):
    sequence: int = pydantic.Field(ge=1)


_TOMBSTONES = pydantic.TypeAdapter(list[_TombstoneDoc])
_BODY = pydantic.TypeAdapter(dict[str, bytes], config=pydantic.ConfigDict(strict=True))


def _dumps(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _loads(what: str, raw: bytes) -> Any:
    try:
        return cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{what} is not CBOR") from error


def _check_format(what: str, loose: Any) -> None:
    if isinstance(loose, dict) and isinstance(loose.get("format"), int):
        if loose["format"] > layout.FORMAT_VERSION:
            raise layout.UnknownFormat(f"{what} has format {loose['format']}")
        if loose["format"] != layout.FORMAT_VERSION:
            raise ValueError(f"{what} has format {loose['format']}")


def _placed(fields: dict[str, Any], body: bytes, max_object_size: int) -> tuple[bytes, list[bytes], int]:
    """(object value, chunks) of fields with body inline when it fits, else in chunks."""
    inline = _dumps({**fields, "body": body, "size": len(body)})
    if len(inline) <= max_object_size:
        return inline, [], len(inline)
    pieces = layout.split(body, max_object_size)
    head = _dumps({**fields, "chunks": len(pieces), "size": len(body)})
    if len(head) > max_object_size:
        raise TooLarge(
            f"the secret's metadata, path and writer take {len(head)} bytes, more than fit in one object "
            f"of this device ({max_object_size} bytes)"
        )
    return head, pieces, len(head) + len(body)


def _metadata_fields(meta: layout.Metadata) -> dict[str, Any]:
    fields = {
        "description": meta.description,
        "labels": dict(meta.labels),
        "format": meta.format,
        "dataType": meta.data_type,
        "createdAt": meta.created_at,
        "source": meta.source,
    }
    return {name: value for name, value in fields.items() if value}


def encode_body(data: Mapping[str, bytes]) -> bytes:
    return _dumps(dict(data))


def plan_record(
    head: layout.Head, data: Mapping[str, bytes], max_object_size: int
) -> tuple[layout.Head, list[tuple[str, bytes]], int]:
    """The head as stored, the (label, value) objects to create in order (chunks, then the record) and
    their total bytes. TooLarge when even the header does not fit in one object."""
    fields = {
        "format": head.format,
        "path": head.path,
        "version": head.version,
        "generation": head.generation,
        "time": head.time,
        "writer": head.writer,
        "checksum": head.checksum,
        "keys": sorted(data),
        "metadata": _metadata_fields(head.metadata),
    }
    body = encode_body(data)
    value, pieces, size = _placed(fields, body, max_object_size)
    label = layout.record_label(head.path, head.generation)
    stored = dataclasses.replace(head, keys=tuple(sorted(data)), chunks=len(pieces), size=len(body))
    return stored, [*zip(layout.chunk_labels(label, len(pieces)), pieces, strict=True), (label, value)], size


def decode_record(label: str, raw: bytes) -> Decoded:
    """The record stored under label; UnknownFormat, or ValueError when it is not a valid v2 record."""
    loose = _loads(f"record {label!r}", raw)
    _check_format(f"record {label!r}", loose)
    try:
        doc = _RecordDoc.model_validate(loose)
    except pydantic.ValidationError as error:
        raise ValueError(f"record {label!r} is not valid: {error.error_count()} errors") from error
    if layout.record_label(doc.path, doc.generation) != label:
        raise ValueError(f"record {label!r} names another path or generation")
    meta = doc.metadata
    head = layout.Head(
        path=doc.path,
        version=doc.version,
        generation=doc.generation,
        keys=tuple(sorted(doc.keys)),
        checksum=doc.checksum,
        deleted=False,
        metadata=layout.Metadata(
            description=meta.description,
            labels=dict(meta.labels),
            format=meta.format,
            data_type=meta.dataType,
            created_at=meta.createdAt,
            source=meta.source,
        ),
        writer=doc.writer,
        time=doc.time,
        chunks=doc.chunks,
        size=doc.size,
    )
    return Decoded(head, doc.body)


def decode_body(head: layout.Head, body: bytes) -> dict[str, bytes]:
    """The secret data in body; ValueError when it is not the data head describes."""
    if len(body) != head.size:
        raise ValueError(f"body of {head.path!r} has {len(body)} bytes, not {head.size}")
    try:
        data = _BODY.validate_python(_loads(f"body of {head.path!r}", body))
    except pydantic.ValidationError as error:
        raise ValueError(f"body of {head.path!r} is not a map of values") from error
    if tuple(sorted(data)) != head.keys:
        raise ValueError(f"body of {head.path!r} holds other keys than its record")
    return data


def plan_ledger(ledger: layout.Ledger, max_object_size: int) -> tuple[layout.Ledger, list[tuple[str, bytes]]]:
    """The ledger as stored and its (label, value) objects in creation order (chunks, then the ledger)."""
    body = _dumps(
        [
            {
                "path": tomb.path,
                "version": tomb.version,
                "generation": tomb.generation,
                "time": tomb.time,
                "writer": tomb.writer,
            }
            for tomb in ledger.tombstones
        ]
    )
    fields = {
        "format": layout.FORMAT_VERSION,
        "generation": ledger.generation,
        "sequence": ledger.sequence,
        "time": times.now(),
    }
    value, pieces, _ = _placed(fields, body, max_object_size)
    label = layout.ledger_label(ledger.generation)
    stored = dataclasses.replace(ledger, chunks=len(pieces), size=len(body))
    return stored, [*zip(layout.chunk_labels(label, len(pieces)), pieces, strict=True), (label, value)]


def decode_ledger(label: str, raw: bytes) -> DecodedLedger:
    """The ledger object under label (tombstones only when inline); UnknownFormat or ValueError."""
    loose = _loads(f"ledger {label!r}", raw)
    _check_format(f"ledger {label!r}", loose)
    try:
        doc = _LedgerDoc.model_validate(loose)
    except pydantic.ValidationError as error:
        raise ValueError(f"ledger {label!r} is not valid: {error.error_count()} errors") from error
    if layout.ledger_label(doc.generation) != label:
        raise ValueError(f"ledger {label!r} names another generation")
    ledger = layout.Ledger(doc.generation, doc.sequence, (), doc.chunks, doc.size)
    if doc.body is None:
        return DecodedLedger(ledger, None)
    return DecodedLedger(
        dataclasses.replace(ledger, tombstones=decode_tombstones(ledger, doc.body)), doc.body
    )


def decode_tombstones(ledger: layout.Ledger, body: bytes) -> tuple[layout.Head, ...]:
    """The tombstones in a ledger's body; ValueError when it is not a list of them."""
    if len(body) != ledger.size:
        raise ValueError(f"ledger body has {len(body)} bytes, not {ledger.size}")
    try:
        docs = _TOMBSTONES.validate_python(_loads("ledger body", body))
    except pydantic.ValidationError as error:
        raise ValueError(f"ledger body is not a list of tombstones: {error.error_count()} errors") from error
    return tuple(
        layout.Head(
            path=doc.path,
            version=doc.version,
            generation=doc.generation,
            keys=(),
            checksum="",
            deleted=True,
            metadata=layout.Metadata(),
            writer=doc.writer,
            time=doc.time,
        )
        for doc in docs
    )
