"""Secret data from command-line sources, binary-safe."""

from __future__ import annotations

import pathlib
import re

import pytest

from kubectl_hsm import secretdata


def test_literals_become_keys() -> None:
    assert secretdata.from_sources(["user=admin", "empty="], [], []) == {"user": b"admin", "empty": b""}


def test_a_literal_value_may_hold_equals_signs() -> None:
    assert secretdata.from_sources(["dsn=a=b=c"], [], []) == {"dsn": b"a=b=c"}


def test_files_are_read_as_bytes_under_their_name_or_a_given_key(tmp_path: pathlib.Path) -> None:
    blob = tmp_path / "cert.der"
    blob.write_bytes(bytes(range(256)))
    data = secretdata.from_sources([], [str(blob), f"copy={blob}"], [])
    assert data == {"cert.der": bytes(range(256)), "copy": bytes(range(256))}


def test_env_files_skip_comments_and_blank_lines(tmp_path: pathlib.Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("# comment\n\nA=1\nB = two words\n")
    assert secretdata.from_sources([], [], [str(env)]) == {"A": b"1", "B": b" two words"}


def test_a_key_given_twice_is_an_error() -> None:
    with pytest.raises(secretdata.DataError, match="more than once"):
        secretdata.from_sources(["a=1", "a=2"], [], [])


def test_a_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(secretdata.DataError, match="--from-file"):
        secretdata.from_sources([], [str(tmp_path / "absent")], [])


def test_encoding_round_trips_binary_values() -> None:
    data = {"k": b"\x00\xff\x10"}
    assert secretdata.decode(secretdata.encode(data)) == data


def test_generate_entries_become_specs_by_key() -> None:
    specs = secretdata.generate_specs(["password=32", "apiKey=hex:32"])
    assert specs == {"password": "32", "apiKey": "hex:32"}


@pytest.mark.parametrize(
    ("entries", "words"),
    [(["password"], "expected KEY=[FORMAT:]N"), (["=32"], "expected"), (["k=1", "k=2"], "more than once")],
)
def test_a_bad_generate_entry_is_named(entries: list[str], words: str) -> None:
    with pytest.raises(secretdata.DataError, match=re.escape(words)):
        secretdata.generate_specs(entries)
