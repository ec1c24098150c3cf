"""Sorted, paginated listings with opaque continue tokens (pure)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable

from . import errors

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of paths and the token that fetches the next one (None on the last page)."""

    items: list[str]
    next_token: str | None


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


def paginate(paths: Iterable[str], limit: int, after: str | None = None) -> Page:
    """Paths sorted and deduplicated, the first limit of them after after."""
    ordered = sorted(set(paths))
    if after is not None:
        ordered = [path for path in ordered if path > after]
    items = ordered[:limit]
    more = len(ordered) > limit
    return Page(items, encode_token(items[-1]) if more and items else None)
