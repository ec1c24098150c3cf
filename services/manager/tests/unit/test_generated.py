"""Generated values: specs, and random bytes turned into passwords, hex and base64 without bias."""

from __future__ import annotations

import base64
import collections
import os
import string

import pytest

from hsm_manager.decide import generated


@pytest.mark.parametrize(
    ("text", "spec", "size"),
    [
        ("32", generated.Spec("password", 32), 32),
        ("password:8", generated.Spec("password", 8), 8),
        ("hex:32", generated.Spec("hex", 32), 64),
        ("base64:32", generated.Spec("base64", 32), 44),
    ],
)
def test_specs_parse_and_know_their_size(text: str, spec: generated.Spec, size: int) -> None:
    assert generated.parse(text) == spec
    assert spec.size == size
    assert len(generated.render(spec, os.urandom)) == size


def test_hex_and_base64_encode_exactly_the_bytes_drawn() -> None:
    drawn = bytes(range(32))
    assert generated.render(generated.Spec("hex", 32), lambda n: drawn[:n]) == drawn.hex().encode()
    assert base64.b64decode(generated.render(generated.Spec("base64", 32), lambda n: drawn[:n])) == drawn


def test_passwords_drop_the_bytes_that_would_bias_them() -> None:
    # 248..255 would map onto the alphabet's first eight characters a second time.
    stream = iter([255, 248, 0, 61, 62, 51] * 10)
    password = generated.render(
        generated.Spec("password", 4), lambda n: bytes(next(stream) for _ in range(n))
    )
    assert password == b"a9aZ"


def test_passwords_use_the_whole_alphabet_evenly() -> None:
    counts = collections.Counter(
        b"".join(generated.render(generated.Spec("password", 4096), os.urandom) for _ in range(30))
    )
    assert set(counts) == set((string.ascii_letters + string.digits).encode())
    # 122,880 characters over 62: about 1,982 each; a biased map would put the first eight near 2,230.
    assert max(counts.values()) < 2_200
    assert min(counts.values()) > 1_760
