"""Page sizes and the opaque continue tokens of paged listings (pure)."""

from __future__ import annotations

import base64
import binascii

from . import errors

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_token(last: str) -> str:
    """The continue token that resumes after the path last."""
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The path a continue token resumes after; InvalidArgument when it was not made by encode_token."""
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError) as err:
        raise errors.InvalidArgument("invalid continue token", {"field": "continue"}) from err


def parse_limit(raw: str | None) -> int:
    """The page size from a query parameter: DEFAULT_LIMIT when absent, else 1..MAX_LIMIT."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.InvalidArgument(f"limit must be an integer from 1 to {MAX_LIMIT}", {"field": "limit"})
    return int(raw)
