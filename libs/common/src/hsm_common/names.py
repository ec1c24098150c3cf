"""Validation of HSM paths, Secret keys and secret sizes, with messages a user can act on."""

from __future__ import annotations

import re
from collections.abc import Mapping

from . import constants

SEGMENT_PATTERN = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
#: Anchored pattern for a whole path, also carried into the CRD schema.
PATH_PATTERN = rf"^{SEGMENT_PATTERN}(/{SEGMENT_PATTERN})*$"
#: Anchored pattern for a Secret key (the Kubernetes rule).
KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

_SEGMENT = re.compile(rf"^{SEGMENT_PATTERN}$")
_KEY = re.compile(KEY_PATTERN)


class InvalidName(ValueError):
    """A path, key or secret that breaks the rules; the message says which rule and where."""


def validate_path(path: str) -> str:
    """Return path if it is a valid HSM path, else raise InvalidName naming the broken rule."""
    if not isinstance(path, str):
        raise InvalidName(f"path must be a string, got {type(path).__name__}")
    if not path:
        raise InvalidName("path must not be empty")
    size = len(path.encode())
    if size > constants.MAX_PATH_BYTES:
        raise InvalidName(f"path is {size} bytes long; at most {constants.MAX_PATH_BYTES} are allowed")
    for index, segment in enumerate(path.split("/")):
        if not segment:
            raise InvalidName(
                f"path {path!r} has an empty segment at position {index}: no leading, trailing or doubled '/'"
            )
        if not _SEGMENT.match(segment):
            raise InvalidName(
                f"path segment {segment!r} of {path!r} is invalid: use lower-case letters, digits, '-' and "
                "'.', starting and ending with a letter or digit"
            )
    return path


def validate_namespaced_path(path: str, namespace: str) -> str:
    """Validate path and require that it lies inside namespace (``<namespace>/...``)."""
    validate_path(path)
    if not path.startswith(f"{namespace}/"):
        raise InvalidName(
            f"path {path!r} lies outside namespace {namespace!r}: it must start with '{namespace}/'"
        )
    return path


def namespace_of(path: str) -> str:
    """The namespace a path belongs to (its first segment); the path must have at least two segments."""
    validate_path(path)
    namespace, sep, _ = path.partition("/")
    if not sep:
        raise InvalidName(f"path {path!r} must be '<namespace>/<name>'")
    return namespace


def validate_key(key: str) -> str:
    """Return key if it is a valid Secret key, else raise InvalidName."""
    if not isinstance(key, str):
        raise InvalidName(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidName("key must not be empty")
    size = len(key.encode())
    if size > constants.MAX_KEY_BYTES:
        raise InvalidName(f"key is {size} bytes long; at most {constants.MAX_KEY_BYTES} are allowed")
    if not _KEY.match(key):
        raise InvalidName(f"key {key!r} is invalid: use letters, digits, '-', '_' and '.' only")
    if key in (".", "..") or key.startswith(".."):
        raise InvalidName(f"key {key!r} is invalid: it must not be '.' or start with '..'")
    return key


def secret_size(data: Mapping[str, bytes]) -> int:
    """Bytes a secret occupies: keys and values together, as a Kubernetes Secret counts them."""
    return sum(len(key.encode()) + len(value) for key, value in data.items())


def validate_data(data: Mapping[str, bytes]) -> Mapping[str, bytes]:
    """Validate every key and the total size of a secret's data (never echoing any value)."""
    if not data:
        raise InvalidName("secret data must hold at least one key")
    for key, value in data.items():
        validate_key(key)
        if not isinstance(value, bytes):
            raise InvalidName(f"value of key {key!r} must be bytes, got {type(value).__name__}")
    size = secret_size(data)
    if size > constants.MAX_SECRET_BYTES:
        raise InvalidName(
            f"secret data is {size} bytes (keys and values); at most {constants.MAX_SECRET_BYTES} are allowed"
        )
    return data
