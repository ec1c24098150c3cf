"""Storage format v2: labels, chunking and the CBOR encoding of records and the ledger (pure)."""

from __future__ import annotations

import datetime

import cbor2
import pytest

from hsm_agent.store import codec, layout

GEN = "00ff00ff00ff00ff"


def head(**fields) -> layout.Head:  # type: ignore[no-untyped-def]
    values = {
        "path": "ns/db",
        "version": 3,
        "generation": GEN,
        "keys": (),
        "checksum": "sha256:ab",
        "deleted": False,
        "metadata": layout.Metadata(description="d", labels={"a": "b"}, created_at="2024-01-01T00:00:00Z"),
        "writer": "dev-a",
        "time": "2024-01-02T00:00:00.000000Z",
    }
    values.update(fields)
    return layout.Head(**values)


def test_small_secret_is_one_object_holding_header_and_data() -> None:
    data = {"user": b"admin", "password": b"\x00\xffsecret"}
    stored, objects, size = codec.plan_record(head(), data, 4096)
    assert [label for label, _ in objects] == [f"ns/db@{GEN}"]
    assert (stored.keys, stored.chunks, size) == (("password", "user"), 0, len(objects[0][1]))
    decoded = codec.decode_record(f"ns/db@{GEN}", objects[0][1])
    assert decoded.head == stored
    assert decoded.body is not None
    assert codec.decode_body(decoded.head, decoded.body) == data


def test_large_secret_is_chunked_and_the_record_is_created_last() -> None:
    data = {"big": bytes(range(256)) * 40}
    stored, objects, size = codec.plan_record(head(), data, 1024)
    labels = [label for label, _ in objects]
    assert labels[-1] == f"ns/db@{GEN}"
    assert labels[:-1] == [f"ns/db@{GEN}#{i}" for i in range(stored.chunks)]
    assert all(len(value) <= 1024 for _, value in objects)
    assert size == sum(len(value) for _, value in objects)
    decoded = codec.decode_record(labels[-1], objects[-1][1])
    assert decoded.body is None
    assert codec.decode_body(decoded.head, b"".join(value for _, value in objects[:-1])) == data


def test_record_is_self_describing_cbor() -> None:
    _, objects, _ = codec.plan_record(head(), {"k": b"v"}, 4096)
    loose = cbor2.loads(objects[0][1])
    assert (loose["format"], loose["path"], loose["version"], loose["keys"]) == (2, "ns/db", 3, ["k"])
    assert cbor2.loads(loose["body"]) == {"k": b"v"}


def test_header_larger_than_an_object_is_refused() -> None:
    meta = layout.Metadata(description="x" * 3000)
    with pytest.raises(codec.TooLarge, match="1024 bytes"):
        codec.plan_record(head(metadata=meta), {"k": b"v" * 2000}, 1024)


def test_record_under_another_label_does_not_decode() -> None:
    _, objects, _ = codec.plan_record(head(), {"k": b"v"}, 4096)
    with pytest.raises(ValueError, match="another path"):
        codec.decode_record(f"ns/other@{GEN}", objects[0][1])


def test_record_of_a_future_format_is_unknown() -> None:
    with pytest.raises(layout.UnknownFormat):
        codec.decode_record(f"ns/db@{GEN}", cbor2.dumps({"format": 3, "anything": True}))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xa1",  # a map cut short: what an interrupted create leaves
        cbor2.dumps([]),
        cbor2.dumps({"format": 1}),
        cbor2.dumps({"format": 2, "path": "ns/db", "version": 0, "generation": GEN}),
        cbor2.dumps(
            {"format": 2, "path": "ns/db", "version": "1", "generation": GEN, "checksum": "", "keys": []}
        ),
    ],
)
def test_malformed_record_does_not_decode(raw: bytes) -> None:
    with pytest.raises(ValueError, match="ns/db"):
        codec.decode_record(f"ns/db@{GEN}", raw)


def test_body_with_other_keys_than_its_record_does_not_decode() -> None:
    stored, _, _ = codec.plan_record(head(), {"a": b"1"}, 4096)
    with pytest.raises(ValueError, match="other keys"):
        codec.decode_body(stored, codec.encode_body({"b": b"1"}))


def test_labels_keep_to_254_bytes_with_a_digest_stem_for_long_paths() -> None:
    short = "ns/" + "p" * (254 - len("ns/") - 24)
    long = short + "p"
    assert layout.stem(short) == short
    assert layout.stem(long).startswith("~")
    assert len(layout.stem(long)) == 33
    for path in (short, long):
        assert len(layout.chunk_labels(layout.record_label(path, GEN), 999_999)[-1].encode()) <= 254


def test_labels_parse_back() -> None:
    assert layout.parse_label(f"ns/db@{GEN}") == ("ns/db", GEN, None)
    assert layout.parse_label(f"ns/db@{GEN}#12") == ("ns/db", GEN, 12)
    assert layout.parse_label("ns/db") is None
    assert layout.parse_label("ns/db@zz") is None


def test_ledger_round_trips_inline_and_in_chunks() -> None:
    tombs = tuple(
        head(path=f"ns/gone-{i:03d}", deleted=True, checksum="", metadata=layout.Metadata(), version=i + 1)
        for i in range(60)
    )
    ledger = layout.Ledger(GEN, 7, tombs)
    stored, objects = codec.plan_ledger(ledger, 65536)
    assert len(objects) == 1
    assert codec.decode_ledger(objects[0][0], objects[0][1]).ledger.tombstones == tombs
    stored, objects = codec.plan_ledger(ledger, 1024)
    assert stored.chunks == len(objects) - 1 > 1
    decoded = codec.decode_ledger(objects[-1][0], objects[-1][1])
    assert (decoded.body, decoded.ledger.sequence) == (None, 7)
    body = b"".join(value for _, value in objects[:-1])
    assert codec.decode_tombstones(decoded.ledger, body) == tombs


def test_only_tombstones_that_expired_are_expired() -> None:
    now = datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)
    assert layout.tombstone_expired(head(deleted=True, time="2024-05-01T00:00:00Z"), now, 86400)
    assert not layout.tombstone_expired(head(deleted=True, time="2024-05-31T12:00:00Z"), now, 86400)
    assert not layout.tombstone_expired(head(deleted=True, time="no time"), now, 86400)
    assert not layout.tombstone_expired(head(time="2024-05-01T00:00:00Z"), now, 86400)


def test_generations_do_not_repeat() -> None:
    assert len({layout.new_generation() for _ in range(1000)}) == 1000
