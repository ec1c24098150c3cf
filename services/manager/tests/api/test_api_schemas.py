"""Request validation: base64 values, names, sizes, and errors that name the offending field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from hsm_common import constants
from hsm_manager.api import errors, paging, schemas
from hsm_manager.decide import generated


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _decode(data: dict[str, str], generate: dict[str, str] | None = None) -> tuple[dict[str, bytes], Any]:
    return schemas.decode_secret(schemas.SecretBody(data=data, generate=generate or {}))


def test_binary_values_decode_exactly() -> None:
    raw = bytes(range(256))
    assert _decode({"blob": _b64(raw)}) == ({"blob": raw}, {})


def test_invalid_base64_names_the_key() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        _decode({"k": "not base64!"})
    assert caught.value.details == {"field": "data.k"}


def test_bad_key_names_the_key() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        _decode({"a/b": _b64(b"x")})
    assert caught.value.details == {"field": "data.a/b"}


def test_data_over_one_mebibyte_is_refused() -> None:
    with pytest.raises(errors.PayloadTooLarge, match="at most"):
        _decode({"k": _b64(b"x" * constants.MAX_SECRET_BYTES)})


def test_a_secret_needs_a_key_given_or_generated() -> None:
    with pytest.raises(errors.InvalidArgument, match="at least one key"):
        _decode({})
    assert _decode({}, {"pw": "16"}) == ({}, {"pw": generated.Spec("password", 16)})


def test_generated_values_count_towards_the_size_limit_before_any_is_made() -> None:
    with pytest.raises(errors.PayloadTooLarge):
        _decode({"k": _b64(b"x" * (constants.MAX_SECRET_BYTES - 100))}, {"big": "hex:4096"})


@pytest.mark.parametrize(
    ("generate", "field", "words"),
    [
        ({"pw": "emoji:8"}, "generate.pw", "unknown format 'emoji'"),
        ({"pw": "hex:0"}, "generate.pw", "from 1 to 4096"),
        ({"pw": "password:4097"}, "generate.pw", "from 1 to 4096"),
        ({"pw": "hex:"}, "generate.pw", "whole number"),
        ({"a/b": "8"}, "generate.a/b", "generate.a/b:"),
        ({"k": "8"}, "generate.k", "also given in data"),
    ],
)
def test_a_bad_generate_entry_names_its_key(generate: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        _decode({"k": _b64(b"v")}, generate)
    assert caught.value.details == {"field": field}
    assert words in caught.value.message


def test_malformed_json_is_a_malformed_body() -> None:
    with pytest.raises(errors.MalformedBody):
        schemas.parse_body(schemas.SecretBody, b"{nope")


def test_unknown_body_field_is_named() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        schemas.parse_body(schemas.SecretBody, json.dumps({"data": {}, "extra": 1}).encode())
    assert caught.value.details == {"field": "extra"}


def test_validation_messages_never_echo_the_value() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        schemas.parse_body(
            schemas.ChangePinBody, json.dumps({"oldPin": 123456, "newPin": "s3cr3t-pin"}).encode()
        )
    assert "123456" not in caught.value.message
    assert "s3cr3t" not in caught.value.message


def test_path_needs_a_namespace_and_a_name() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        schemas.parse_path("onlyone")
    assert caught.value.details == {"field": "path"}


def test_path_namespace_is_its_first_segment() -> None:
    assert schemas.parse_path("team-a/db/password").namespace == "team-a"


@pytest.mark.parametrize("path", ["ns/../x", "ns//x", "/ns/x", "NS/x", "ns/x/"])
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        schemas.parse_path(path)


@pytest.mark.parametrize("path", ["ns/a", "ns/ü-ß/x", "ns/" + "z" * 250])
def test_a_continue_token_gives_back_the_path_it_resumes_after(path: str) -> None:
    token = paging.encode_token(path)
    assert token.isascii()
    assert paging.decode_token(token) == path


@pytest.mark.parametrize("raw", ["0", "-1", "1001", "ten"])
def test_limit_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        paging.parse_limit(raw)


def test_an_import_maps_more_paths_than_it_has_namespaces() -> None:
    # kubectl hsm import sends one rule per HSMSecret: a hundred of them in two namespaces.
    mapping = {f"team-{i % 2}/app-{i:03d}": f"ns-{i % 2}" for i in range(100)}
    body = schemas.parse_body(schemas.ImportLegacyBody, json.dumps({"mapping": mapping}).encode())
    assert schemas.import_namespaces(body) == ["ns-0", "ns-1"]


def test_an_import_with_more_mapping_rules_than_the_agents_take_is_refused() -> None:
    mapping = {f"p{i}": "ns" for i in range(schemas.MAX_IMPORT_RULES + 1)}
    with pytest.raises(errors.InvalidArgument) as caught:
        schemas.parse_body(schemas.ImportLegacyBody, json.dumps({"mapping": mapping}).encode())
    assert caught.value.details == {"field": "mapping"}
