"""The REST API as plain methods; errors become ApiError with the API's stable code and message."""

from __future__ import annotations

import urllib.parse
from typing import Any

import requests
from requests import adapters

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
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self._verify: str | bool = False if target.insecure else (target.ca_bundle or True)
        if target.server_name and not target.insecure:
            self._session.mount("https://", _NamedHost(target.server_name))

    def request(self, method: str, route: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """The status and enveloped body of one call; ApiError unless 2xx (207 included, it is reported)."""
        url = self._target.url.rstrip("/") + "/api/v1" + route
        try:
            response = self._session.request(method, url, timeout=TIMEOUT, verify=self._verify, **kwargs)
        except requests.exceptions.SSLError as err:
            raise ApiError(0, "TLS_UNVERIFIED", _unverified(self._target, err)) from None
        except requests.RequestException as err:
            hint = ""
            if self._target.url.startswith("http://"):
                hint = " (the API answers HTTPS only: use an https:// URL)"
            raise ApiError(
                0, "UNREACHABLE", f"cannot reach {self._target.url}: {type(err).__name__}{hint}"
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


class _NamedHost(adapters.HTTPAdapter):
    """Verifies the server's certificate for a given name rather than the URL's host: through a
    port-forward the URL is 127.0.0.1, while the certificate names the Service."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = self._server_name
        kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _unverified(target: connect.Target, err: requests.exceptions.SSLError) -> str:
    """What a failed TLS verification means and what to do, for people."""
    text = str(err)
    if "hostname" in text.lower() or "doesn't match" in text or "IP address mismatch" in text:
        why = (
            f"its certificate is not for {target.server_name or urllib.parse.urlsplit(target.url).hostname}; "
            "pass --tls-server-name with a name the certificate carries (e.g. hsm-api.<namespace>.svc)"
        )
    elif "CERTIFICATE_VERIFY_FAILED" in text:
        why = (
            "its certificate is not signed by the CA this command trusts"
            + (f" ({target.ca_bundle})" if target.ca_bundle else " (the system's trust store)")
            + "; pass --certificate-authority FILE with the API's CA (the operator publishes it: "
            "kubectl -n <api namespace> get configmap hsm-api-ca -o jsonpath='{.data.ca\\.crt}')"
        )
    else:
        why = "the TLS handshake failed (is this the API's HTTPS port?)"
    return (
        f"cannot verify the API server at {target.url}: {why}. "
        "--insecure-skip-tls-verify turns verification off, for testing only"
    )
