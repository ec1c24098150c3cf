"""A token in the Go hsm-secrets-operator's layout, written with python-pkcs11 from the layout's documented
facts (no code of the Go project): for the importer's tests here and the end-to-end tests.

Every object is a private token CKO_DATA object, modifiable, with CKA_APPLICATION "hsm-secrets-operator";
one object per key labelled "<path>/<key>" ("<path>" for the key "data"), JSON metadata in
"<path>/_metadata", and on some keys a CKA_OBJECT_ID DER OID 1.3.6.1.4.1.99999.1.N naming a data type.

populate() writes `paths` legacy paths (100 by default: 248 objects, within SoftHSM2's budget; an
OpenSC-driven token holds 128, see docs/migrating.md) and returns what it wrote and what an importer should
make of it. Of the paths, ten are special: two whose label "<p>/c" is ambiguous (both "<p>" and "<p>/c"
have a _metadata object), three half-written (a key missing), one with only its _metadata left, one whose
name our rules refuse, one of one segment with the key "data" (its label "<p>" has no slash and so proves
the path), two without metadata (only the known-paths list decides them). Every other path has two keys.

Usage as a program: SOFTHSM2_CONF=... python legacy_token.py LABEL PIN [PATHS] writes the token and prints
the known-paths file's text.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from typing import Any

import pkcs11

A = pkcs11.Attribute
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
APPLICATION = "hsm-secrets-operator"
#: DER of 1.3.6.1.4.1.99999.1 without the tag, the length and the last arc.
_OID_ARC = bytes([0x2B, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8D, 0x1F, 0x01])
DATA_TYPE_NAMES = {
    1: "plaintext",
    2: "json",
    3: "pem",
    4: "binary",
    5: "base64",
    6: "x509",
    7: "private-key",
    8: "docker-config",
}
SPECIAL = 10


@dataclasses.dataclass
class LegacyFixture:
    """What populate() wrote, and what an importer given known_paths_text should make of it."""

    secrets: dict[str, dict[str, bytes]] = dataclasses.field(default_factory=dict)
    """Legacy path → key → value, as on the token (half-written paths with the keys they kept)."""
    metadata: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Legacy path → the JSON of its _metadata object."""
    data_types: dict[str, str] = dataclasses.field(default_factory=dict)
    """Legacy path → the data type its keys' object ids name (all keys the same)."""
    ready: set[str] = dataclasses.field(default_factory=set)
    """Paths every label of which the known-paths list (or metadata) decides, with all their keys."""
    decided_without_list: set[str] = dataclasses.field(default_factory=set)
    """Ready paths that metadata or a "<p>" label decides even without the known-paths list."""
    incomplete: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Half-written paths → the keys they lack."""
    ambiguous_labels: set[str] = dataclasses.field(default_factory=set)
    ambiguous_paths: set[str] = dataclasses.field(default_factory=set)
    empty: set[str] = dataclasses.field(default_factory=set)
    invalid: set[str] = dataclasses.field(default_factory=set)
    known: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    objects: int = 0

    @property
    def known_paths_text(self) -> str:
        """The known-paths file: every path the cluster's HSMSecrets would name, with its keys."""
        return "".join(f"{path} {','.join(keys)}\n".replace(" \n", "\n") for path, keys in self.known.items())


def oid(data_type: int) -> bytes:
    """DER of 1.3.6.1.4.1.99999.1.<data_type>."""
    body = _OID_ARC + bytes([data_type])
    return bytes([0x06, len(body)]) + body


class _Writer:
    def __init__(self, session: Any, fixture: LegacyFixture) -> None:
        self.session = session
        self.fixture = fixture

    def put(self, label: str, value: bytes, object_id: bytes = b"") -> None:
        attrs = {
            A.CLASS: pkcs11.ObjectClass.DATA,
            A.TOKEN: True,
            A.PRIVATE: True,
            A.MODIFIABLE: True,
            A.APPLICATION: APPLICATION,
            A.LABEL: label,
            A.VALUE: value,
        }
        if object_id:
            attrs[A.OBJECT_ID] = object_id
        self.session.create_object(attrs)
        self.fixture.objects += 1

    def secret(
        self, path: str, data: dict[str, bytes], meta: dict[str, Any] | None = None, data_type: int = 0
    ) -> None:
        for key, value in data.items():
            self.put(path if key == "data" else f"{path}/{key}", value, oid(data_type) if data_type else b"")
        if meta is not None:
            self.metadata(path, meta)
        self.fixture.secrets[path] = dict(data)
        if data_type:
            self.fixture.data_types[path] = DATA_TYPE_NAMES[data_type]

    def metadata(self, path: str, meta: dict[str, Any]) -> None:
        self.put(f"{path}/_metadata", json.dumps(meta).encode())
        self.fixture.metadata[path] = meta


def _metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "description": f"application {i}",
        "labels": {"team": f"team-{i % 3}"},
        "format": "text",
        "dataType": "",
        "createdAt": "2024-05-01T10:00:00Z",
        "source": "go-operator",
    }
    if i % 6 == 0:
        meta["owner"] = "someone"  # not a field of ours: reported as dropped
    return meta


def _regular(writer: _Writer, rng: random.Random, i: int) -> None:
    fixture = writer.fixture
    path = f"team-{i % 3}/app-{i:03d}"
    if i % 10 == 3:
        data = {"data": rng.randbytes(40), "ca.crt": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERT"}
    else:
        size = 3000 if i % 15 == 7 else 24
        data = {"username": f"user-{i}".encode(), "password": rng.randbytes(size) + b"\x00\xff"}
    meta = _metadata(i) if i % 2 == 0 else None
    writer.secret(path, data, meta, data_type=1 + (i // 4) % 8 if i % 4 == 1 else 0)
    fixture.known[path] = tuple(sorted(data))
    fixture.ready.add(path)
    if meta is not None:
        # A "<p>" label proves nothing here: "team-x/app-i" may as well be path "team-x", key "app-i".
        fixture.decided_without_list.add(path)


def _special(writer: _Writer, rng: random.Random) -> None:
    fixture = writer.fixture
    for j in range(2):
        # "amb-j/x" key "c" and "amb-j/x/c" key "data" are the same label; both paths have metadata.
        path = f"amb-{j}/x"
        writer.secret(path, {"c": rng.randbytes(16), "d": rng.randbytes(16)}, _metadata(200 + j))
        writer.metadata(f"{path}/c", _metadata(300 + j))
        fixture.known[path] = ("c", "d")
        fixture.ambiguous_labels.add(f"{path}/c")
        fixture.ambiguous_paths |= {path, f"{path}/c"}
    for j in range(3):
        # Written as username + password; the crash came after the delete, before password was created.
        path = f"half-{j}/svc"
        writer.secret(path, {"username": f"half-{j}".encode()}, _metadata(400 + j) if j < 2 else None)
        fixture.known[path] = ("password", "username")
        fixture.incomplete[path] = ("password",)
    writer.metadata("gone/svc", _metadata(500))
    fixture.known["gone/svc"] = ()
    fixture.empty.add("gone/svc")
    writer.secret("Legacy_Upper/db", {"username": b"u", "password": rng.randbytes(8)}, _metadata(600))
    fixture.known["Legacy_Upper/db"] = ("password", "username")
    fixture.invalid.add("Legacy_Upper/db")
    writer.secret("plain", {"data": rng.randbytes(32), "extra": b"more"})
    fixture.known["plain"] = ()
    fixture.ready.add("plain")
    fixture.decided_without_list.add("plain")
    for j in range(2):
        path = f"loose-{j}/p"
        writer.secret(path, {"k1": rng.randbytes(8), "k2": rng.randbytes(8)})
        fixture.known[path] = ("k1", "k2")
        fixture.ready.add(path)


def populate(label: str, pin: str, paths: int = 100, seed: int = 20, module: str = MODULE) -> LegacyFixture:
    """Write `paths` legacy paths (at least the ten special ones) on the token labelled label."""
    if paths < SPECIAL:
        raise ValueError(f"at least {SPECIAL} paths: the special cases")
    lib = pkcs11.lib(module)
    # The library may be initialised already, in this process, for another token store.
    lib.reinitialize()
    fixture = LegacyFixture()
    rng = random.Random(seed)
    session = lib.get_token(token_label=label).open(rw=True, user_pin=pin)
    try:
        writer = _Writer(session, fixture)
        for i in range(paths - SPECIAL):
            _regular(writer, rng, i)
        _special(writer, rng)
    finally:
        session.close()
    return fixture


if __name__ == "__main__":
    token_label, user_pin, *rest = sys.argv[1:]
    print(populate(token_label, user_pin, int(rest[0]) if rest else 100).known_paths_text, end="")
