"""The Go hsm-secrets-operator's layout on a token, as its documentation describes it. Pure.

- Every object is a private token CKO_DATA object with CKA_APPLICATION ``hsm-secrets-operator`` (ours
  name a role after a slash, so both live side by side on one token).
- One object per key: CKA_LABEL ``<path>/<key>``, or just ``<path>`` for the key named ``data``;
  CKA_VALUE is the key's value.
- Metadata, when written, is JSON in ``<path>/_metadata``: description, labels, format, dataType,
  createdAt, source.
- CKA_OBJECT_ID may hold the DER OID 1.3.6.1.4.1.99999.1.N naming the value's data type.

A label alone does not say where the path ends: ``a/b`` with key ``c`` and ``a/b/c`` with key ``data``
are both ``a/b/c``. readings() gives every way to read a label; deciding between them is plan.py's job.
"""

from __future__ import annotations

import json
from typing import Any

from hsm_agent.store import layout

APPLICATION = "hsm-secrets-operator"
DATA_KEY = "data"
METADATA_KEY = "_metadata"
#: 1.3.6.1.4.1.99999.1: the arc under which the last number names the data type.
OID_ARC = (1, 3, 6, 1, 4, 1, 99999, 1)
DATA_TYPES = {
    1: "plaintext",
    2: "json",
    3: "pem",
    4: "binary",
    5: "base64",
    6: "x509",
    7: "private-key",
    8: "docker-config",
}
_STRING_FIELDS = {
    "description": "description",
    "format": "format",
    "dataType": "data_type",
    "createdAt": "created_at",
    "source": "source",
}
_DER_OID_TAG = 0x06


def metadata_path(label: str) -> str | None:
    """The path whose metadata the object labelled label holds, or None when it holds a key."""
    path, sep, last = label.rpartition("/")
    return path if sep and last == METADATA_KEY else None


def readings(label: str) -> tuple[tuple[str, str], ...]:
    """Every (path, key) a key object's label can stand for: the whole label as a path with its key
    ``data``, and, when the label has a slash, the part before the last one as a path and the rest as the
    key. ``<p>/data`` has only the first reading: the key ``data`` is always stored as ``<p>``."""
    whole = ((label, DATA_KEY),)
    path, sep, key = label.rpartition("/")
    if not sep or not path or key in ("", DATA_KEY):
        return whole
    return (*whole, (path, key))


def decode_oid(der: bytes) -> tuple[int, ...]:
    """The arcs of a DER-encoded OBJECT IDENTIFIER; ValueError when der is not one."""
    if len(der) < 3 or der[0] != _DER_OID_TAG or der[1] != len(der) - 2 or der[1] > 0x7F:
        raise ValueError("not a DER object identifier")
    arcs: list[int] = []
    value = 0
    for byte in der[2:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if der[-1] & 0x80:
        raise ValueError("truncated object identifier")
    first = arcs[0]
    head = (min(first // 40, 2), first - 40 * min(first // 40, 2))
    return (*head, *arcs[1:])


def data_type(object_id: bytes) -> str | None:
    """The data type an object id names; None when unset; ValueError when it names none we know."""
    if not object_id:
        return None
    arcs = decode_oid(object_id)
    if arcs[: len(OID_ARC)] != OID_ARC or len(arcs) != len(OID_ARC) + 1 or arcs[-1] not in DATA_TYPES:
        raise ValueError(f"object id {'.'.join(map(str, arcs))} names no data type of the Go layout")
    return DATA_TYPES[arcs[-1]]


def parse_metadata(raw: bytes) -> tuple[layout.Metadata, tuple[str, ...]]:
    """Our metadata from a ``_metadata`` object, and what of it does not fit ours (said in words).

    ValueError when the object is not a JSON object at all.
    """
    try:
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError("the _metadata object is not JSON") from error
    if not isinstance(doc, dict):
        raise ValueError("the _metadata object is not a JSON object")
    fields: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in doc.items():
        if name in _STRING_FIELDS and isinstance(value, str):
            fields[_STRING_FIELDS[name]] = value
        elif name in _STRING_FIELDS:
            dropped.append(f"metadata field {name} (not a string)")
        elif name != "labels":
            dropped.append(f"metadata field {name} (ours has no such field)")
    labels: dict[str, str] = {}
    raw_labels = doc.get("labels", {})
    if isinstance(raw_labels, dict):
        for name, value in raw_labels.items():
            if isinstance(value, str):
                labels[name] = value
            else:
                dropped.append(f"metadata label {name} (not a string)")
    elif raw_labels is not None:
        dropped.append("metadata field labels (not an object)")
    meta = layout.Metadata(
        description=fields.get("description", ""),
        labels=labels,
        format=fields.get("format", ""),
        data_type=fields.get("data_type", ""),
        created_at=fields.get("created_at", ""),
        source=fields.get("source", ""),
    )
    return meta, tuple(dropped)
