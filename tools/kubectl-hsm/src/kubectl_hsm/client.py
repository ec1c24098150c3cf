"""The REST API as plain methods; errors become ApiError with the API's stable code and message."""

from __future__ import annotations

import urllib.parse
from typing import Any

import requests

from . import connect

TIMEOUT = 60.0


class ApiError(RuntimeError):
    """A failed API call: HTTP status, stable error code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.details = details or {}


class Client:
    """Calls of one target (URL + token)."""

    def __init__(self, target: connect.Target) -> None:
        self._target = target
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {target.token}"
        self._session.verify = False if target.insecure else (target.ca_bundle or True)

    def request(self, method: str, route: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """The status and enveloped body of one call; ApiError unless 2xx (207 included, it is reported)."""
        url = self._target.url.rstrip("/") + "/api/v1" + route
        try:
            response = self._session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as err:
            raise ApiError(
                0, "UNREACHABLE", f"cannot reach {self._target.url}: {type(err).__name__}"
            ) from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "BAD_RESPONSE", f"non-JSON answer (HTTP {response.status_code})"
            ) from None
        if response.status_code >= 300:
            error = body.get("error") or {}
            raise ApiError(
                response.status_code,
                error.get("code", "UNKNOWN"),
                error.get("message", ""),
                error.get("details"),
            )
        return response.status_code, body

    @staticmethod
    def secret_route(path: str, suffix: str = "") -> str:
        """The route of a secret path (its segments quoted)."""
        return "/hsm/secrets/" + urllib.parse.quote(path, safe="/") + suffix
