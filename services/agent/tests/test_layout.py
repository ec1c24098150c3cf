"""Storage format v1 encoding and label planning (pure)."""

from __future__ import annotations

import pytest

from hsm_agent.store import layout


def head(**fields) -> layout.Head:  # type: ignore[no-untyped-def]
    values = {
        "path": "ns/db",
        "version": 3,
        "generation": "00ff",
        "keys": (layout.KeyLayout("user", ("ns/db/user@00ff",), 5),),
        "checksum": "sha256:ab",
        "deleted": False,
        "metadata": layout.Metadata(description="d", labels={"a": "b"}, created_at="2024-01-01T00:00:00Z"),
        "writer": "dev-a",
        "time": "2024-01-02T00:00:00.000000Z",
    }
    values.update(fields)
    return layout.Head(**values)


def test_head_survives_encoding() -> None:
    original = head()
    assert layout.decode_head("ns/db", layout.encode_head(original)) == original


def test_head_encoding_is_compact_json() -> None:
    assert b": " not in layout.encode_head(head())
    assert b", " not in layout.encode_head(head())


def test_head_of_a_future_format_is_unknown() -> None:
    with pytest.raises(layout.UnknownFormat):
        layout.decode_head("ns/db", b'{"format": 2, "anything": true}')


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"format":1}', b'{"format":1,"version":0}'])
def test_malformed_head_does_not_decode(raw: bytes) -> None:
    with pytest.raises(ValueError, match="ns/db"):
        layout.decode_head("ns/db", raw)


def test_tombstone_with_keys_does_not_decode() -> None:
    with pytest.raises(ValueError, match="tombstone"):
        layout.decode_head("ns/db", layout.encode_head(head(deleted=True)))


def test_small_value_gets_one_plain_label() -> None:
    assert layout.value_labels("ns/db", "user", "0a", 1) == ("ns/db/user@0a",)


def test_chunked_value_gets_numbered_labels() -> None:
    assert layout.value_labels("ns/db", "k", "0a", 3) == ("ns/db/k@0a#0", "ns/db/k@0a#1", "ns/db/k@0a#2")


def test_label_over_254_bytes_uses_the_digest_form() -> None:
    path = "ns/" + "p" * 240
    labels = layout.value_labels(path, "key-name", "0a", 2)
    stem = layout.digest_stem(path, "key-name")
    assert labels == (f"{stem}@0a#0", f"{stem}@0a#1")
    assert len(stem) == 33
    assert stem.startswith("~")


def test_label_of_exactly_254_bytes_stays_plain() -> None:
    path = "ns/" + "p" * (254 - len("ns/") - len("/k@0a"))
    (label,) = layout.value_labels(path, "k", "0a", 1)
    assert len(label) == 254
    assert label.startswith("ns/")


def test_chunk_suffix_counts_towards_the_label_limit() -> None:
    path = "ns/" + "p" * (254 - len("ns/") - len("/k@0a"))
    assert layout.value_labels(path, "k", "0a", 2)[0].startswith("~")


@pytest.mark.parametrize(("size", "chunks"), [(0, 1), (1, 1), (4096, 1), (4097, 2), (3 * 4096, 3)])
def test_chunk_count_covers_the_value(size: int, chunks: int) -> None:
    assert layout.chunk_count(size, 4096) == chunks


def test_plan_splits_values_and_reassembles_them() -> None:
    data = {"b": b"x" * 10, "a": b""}
    layouts, objects = layout.plan_values("ns/s", data, "0a", 4)
    stored = dict(objects)
    rebuilt = layout.assemble(head(path="ns/s", keys=layouts), stored)
    assert rebuilt == data
    assert [item.key for item in layouts] == ["a", "b"]
    assert len(objects) == 4


def test_generations_do_not_repeat() -> None:
    assert len({layout.new_generation() for _ in range(1000)}) == 1000
