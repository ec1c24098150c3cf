import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsm_common import constants, names

segment = st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?\Z")


@given(st.lists(segment, min_size=1, max_size=6))
def test_paths_built_from_valid_segments_are_accepted(segments: list[str]) -> None:
    path = "/".join(segments)
    if len(path.encode()) <= constants.MAX_PATH_BYTES:
        assert names.validate_path(path) == path


@given(st.text(min_size=1, max_size=40))
def test_a_path_is_accepted_exactly_when_every_segment_matches_the_rule(path: str) -> None:
    expected = all(re.fullmatch(names.SEGMENT_PATTERN, s) for s in path.split("/"))
    try:
        names.validate_path(path)
        accepted = True
    except names.InvalidName:
        accepted = False
    assert accepted == bool(expected)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "must not be empty"),
        ("/ns/db", "empty segment"),
        ("ns/db/", "empty segment"),
        ("ns//db", "empty segment"),
        ("ns/../db", "segment '..'"),
        ("ns/DB", "segment 'DB'"),
        ("ns/db@1", "segment 'db@1'"),
        ("ns/-db", "segment '-db'"),
        ("a/" + "b" * 253, "at most 254"),
    ],
)
def test_invalid_paths_are_rejected_with_the_broken_rule(path: str, fragment: str) -> None:
    with pytest.raises(names.InvalidName, match=re.escape(fragment)):
        names.validate_path(path)


def test_a_path_of_exactly_254_bytes_is_accepted() -> None:
    path = "a/" + "b" * 252
    assert names.validate_path(path) == path


def test_namespaced_path_must_start_with_its_namespace() -> None:
    assert names.validate_namespaced_path("team-a/db", "team-a") == "team-a/db"
    with pytest.raises(names.InvalidName, match="outside namespace 'team-a'"):
        names.validate_namespaced_path("team-ab/db", "team-a")


def test_namespace_of_a_single_segment_path_is_an_error() -> None:
    assert names.namespace_of("ns/a/b") == "ns"
    with pytest.raises(names.InvalidName, match="<namespace>/<name>"):
        names.namespace_of("ns")


@given(st.from_regex(r"\A[-._a-zA-Z0-9]{1,60}\Z"))
def test_keys_of_allowed_characters_are_accepted_unless_dot_dot(key: str) -> None:
    if key in (".", "..") or key.startswith(".."):
        with pytest.raises(names.InvalidName):
            names.validate_key(key)
    else:
        assert names.validate_key(key) == key


@pytest.mark.parametrize("key", ["", "a/b", "a b", "é", "..x", ".", "k" * 254])
def test_invalid_keys_are_rejected(key: str) -> None:
    with pytest.raises(names.InvalidName):
        names.validate_key(key)


def test_data_over_one_mebibyte_is_rejected_without_echoing_values() -> None:
    value = b"S3CRET" * 200_000
    with pytest.raises(names.InvalidName) as caught:
        names.validate_data({"k": value})
    assert "at most 1048576" in str(caught.value)
    assert "S3CRET" not in str(caught.value)


def test_data_of_exactly_one_mebibyte_is_accepted() -> None:
    data = {"k": b"x" * (constants.MAX_SECRET_BYTES - 1)}
    assert names.validate_data(data) is data


def test_empty_data_is_rejected() -> None:
    with pytest.raises(names.InvalidName, match="at least one key"):
        names.validate_data({})
