"""Secret data from the command line: --from-literal, --from-file, --from-env-file (binary-safe), and the
keys --generate asks the device to make."""

from __future__ import annotations

import base64
import pathlib


class DataError(ValueError):
    """A source that cannot be turned into secret data; the message names the source."""


def from_sources(literals: list[str], files: list[str], env_files: list[str]) -> dict[str, bytes]:
    """The keys and raw values of all sources; a key given twice is an error (like kubectl create secret)."""
    data: dict[str, bytes] = {}

    def put(key: str, value: bytes, source: str) -> None:
        if not key:
            raise DataError(f"{source}: empty key")
        if key in data:
            raise DataError(f"{source}: key {key!r} given more than once")
        data[key] = value

    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep:
            raise DataError(f"--from-literal {key!r}: expected KEY=VALUE")
        put(key, value.encode(), f"--from-literal {key}")
    for spec in files:
        key, sep, path = spec.partition("=")
        if not sep:
            key, path = pathlib.Path(spec).name, spec
        try:
            put(key, pathlib.Path(path).read_bytes(), f"--from-file {spec}")
        except OSError as err:
            raise DataError(f"--from-file {spec}: {err.strerror}") from None
    for path in env_files:
        try:
            text = pathlib.Path(path).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"--from-env-file {path}: cannot read ({type(err).__name__})") from None
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise DataError(f"--from-env-file {path}:{number}: expected KEY=VALUE")
            put(key.strip(), value.encode(), f"--from-env-file {path}:{number}")
    return data


def generate_specs(entries: list[str]) -> dict[str, str]:
    """Key → spec of every --generate KEY=SPEC (the API checks the spec and says what is wrong)."""
    specs: dict[str, str] = {}
    for entry in entries:
        key, sep, spec = entry.partition("=")
        if not key or not sep or not spec:
            raise DataError(
                f"--generate {entry!r}: expected KEY=[FORMAT:]N, e.g. password=32 or apiKey=hex:32"
            )
        if key in specs:
            raise DataError(f"--generate {key}: key given more than once")
        specs[key] = spec
    return specs


def encode(data: dict[str, bytes]) -> dict[str, str]:
    """Values as the API takes them (base64)."""
    return {key: base64.b64encode(value).decode("ascii") for key, value in data.items()}


def decode(data: dict[str, str]) -> dict[str, bytes]:
    """Values as the API returns them, decoded."""
    return {key: base64.b64decode(value) for key, value in data.items()}
