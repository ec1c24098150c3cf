"""The JSON envelope every response uses: ``{success, data, error{code, message, details}}``."""

from __future__ import annotations

from typing import Any

from . import errors


def ok(data: Any) -> dict[str, Any]:
    """The envelope of a successful response."""
    return {"success": True, "data": data, "error": None}


def failure(
    code: errors.Code, message: str, details: dict[str, Any] | None = None, data: Any = None
) -> dict[str, Any]:
    """The envelope of a failed (or partially failed) response; data carries per-device results, if any."""
    return {
        "success": False,
        "data": data,
        "error": {"code": code.value, "message": message, "details": details or {}},
    }


def from_error(error: errors.ApiError) -> dict[str, Any]:
    """The envelope of an ApiError."""
    return failure(error.code, error.message, error.details)
