"""Values made from a device's random number generator: what a ``generate`` entry asks for, and how random
bytes become that value.

A spec is ``[FORMAT:]N``:

- ``password:N`` (or just ``N``): N characters from A-Z, a-z and 0-9, each equally likely;
- ``hex:N``: N random bytes as 2N lowercase hex digits (as ``openssl rand -hex N``);
- ``base64:N``: N random bytes, base64-encoded (as ``openssl rand -base64 N``).
"""

from __future__ import annotations

import base64
import dataclasses
import string
from collections.abc import Callable

FORMATS = ("password", "hex", "base64")
#: The longest value one spec may ask for (characters for passwords, random bytes otherwise).
MAX_LENGTH = 4096
PASSWORD_ALPHABET = (string.ascii_letters + string.digits).encode("ascii")
#: Random bytes below this map onto the alphabet without bias (the largest multiple of its size ≤ 256).
_UNBIASED_BELOW = 256 - 256 % len(PASSWORD_ALPHABET)


class InvalidSpec(ValueError):
    """A spec that does not follow ``[FORMAT:]N``; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class Spec:
    format: str
    length: int

    @property
    def size(self) -> int:
        """Bytes of the value it makes."""
        if self.format == "hex":
            return 2 * self.length
        if self.format == "base64":
            return 4 * -(-self.length // 3)
        return self.length


def parse(text: str) -> Spec:
    """The spec ``text`` names, or InvalidSpec."""
    form, _, count = text.rpartition(":")
    form = form or "password"
    if form not in FORMATS:
        raise InvalidSpec(f"unknown format {form!r}: use one of {', '.join(FORMATS)} (e.g. hex:32)")
    if not count.isdigit() or not 1 <= int(count) <= MAX_LENGTH:
        raise InvalidSpec(f"the length must be a whole number from 1 to {MAX_LENGTH} (e.g. {form}:32)")
    return Spec(form, int(count))


def render(spec: Spec, draw: Callable[[int], bytes]) -> bytes:
    """The value of ``spec``; ``draw(n)`` returns n random bytes."""
    if spec.format == "hex":
        return draw(spec.length).hex().encode("ascii")
    if spec.format == "base64":
        return base64.b64encode(draw(spec.length))
    chars = bytearray()
    while len(chars) < spec.length:
        # Bytes at or above the cut would favour the alphabet's first characters: drop them, draw again.
        wanted = spec.length - len(chars)
        for byte in draw(wanted + wanted // 16 + 4):
            if byte < _UNBIASED_BELOW and len(chars) < spec.length:
                chars.append(PASSWORD_ALPHABET[byte % len(PASSWORD_ALPHABET)])
    return bytes(chars)
