import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsm_common import checksum

datas = st.dictionaries(st.text(min_size=1, max_size=8), st.binary(max_size=16), max_size=5)


def test_concatenation_ambiguity_does_not_collide() -> None:
    assert checksum.checksum({"ab": b"c"}) != checksum.checksum({"a": b"bc"})
    assert checksum.checksum({"a": b"", "b": b""}) != checksum.checksum({"ab": b""})


@given(datas, datas)
def test_encoding_is_injective(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    assert (checksum.canonical_encoding(a) == checksum.canonical_encoding(b)) == (a == b)


@given(datas)
def test_checksum_ignores_insertion_order(data: dict[str, bytes]) -> None:
    reordered = dict(reversed(list(data.items())))
    assert checksum.checksum(data) == checksum.checksum(reordered)


def test_checksum_format() -> None:
    value = checksum.checksum({"k": b"v"})
    assert value.startswith("sha256:")
    assert len(value) == len("sha256:") + 64


@given(datas)
def test_mac_depends_on_the_key(data: dict[str, bytes]) -> None:
    one = checksum.mac(b"k" * 32, data)
    two = checksum.mac(b"j" * 32, data)
    assert one.startswith("hmac-sha256:")
    assert one != two
    assert one != checksum.checksum(data)


def test_mac_refuses_short_keys() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        checksum.mac(b"short", {"k": b"v"})
    with pytest.raises(ValueError, match="at least 16 bytes"):
        checksum.mac_of_checksum(b"short", "sha256:00")


def test_mac_of_checksum_is_stable_and_keyed() -> None:
    digest = checksum.checksum({"k": b"v"})
    assert checksum.mac_of_checksum(b"a" * 16, digest) == checksum.mac_of_checksum(b"a" * 16, digest)
    assert checksum.mac_of_checksum(b"a" * 16, digest) != checksum.mac_of_checksum(b"b" * 16, digest)
