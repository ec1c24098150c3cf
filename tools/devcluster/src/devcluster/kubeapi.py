"""A minimal Kubernetes REST client: JSON requests and line-delimited watches over TLS.

Small on purpose: devcluster needs a handful of calls, and a typed client this size is easier to keep
`mypy --strict` clean than the generated `kubernetes` package.
"""

import base64
import dataclasses
import http.client
import json
import pathlib
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

import yaml

JSON = dict[str, Any]


class ApiError(RuntimeError):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclasses.dataclass(frozen=True)
class Client:
    """Talks to one API server as one identity."""

    host: str
    port: int
    context: ssl.SSLContext
    token: str | None = None

    @classmethod
    def from_kubeconfig(cls, path: pathlib.Path) -> "Client":
        """Build a client from a kubeconfig written by devcluster (embedded CA, cert or token)."""
        doc = yaml.safe_load(path.read_text())
        cluster = doc["clusters"][0]["cluster"]
        user = doc["users"][0]["user"]
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        if "client-certificate-data" in user:
            # ssl only loads key material from files; keep them only as long as loading takes.
            with tempfile.TemporaryDirectory() as tmp:
                cert = pathlib.Path(tmp) / "c.pem"
                key = pathlib.Path(tmp) / "k.pem"
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                ctx.load_cert_chain(cert, key)
        url = urllib.parse.urlsplit(cluster["server"])
        return cls(
            host=url.hostname or "127.0.0.1", port=url.port or 443, context=ctx, token=user.get("token")
        )

    def _connection(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> JSON:
        """Send one request and return the decoded JSON answer; raise ApiError on a non-2xx status."""
        data = self.text(method, path, json.dumps(body) if body is not None else None, content_type, timeout)
        decoded: JSON = json.loads(data) if data else {}
        return decoded

    def text(
        self,
        method: str,
        path: str,
        payload: str | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> str:
        """Send one request and return the raw answer (``/readyz`` answers text); ApiError on non-2xx."""
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=payload, headers=self._headers(content_type))
            resp = conn.getresponse()
            data = resp.read().decode()
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, data)
        return data

    def get(self, path: str) -> JSON:
        """GET ``path``."""
        return self.request("GET", path)

    def watch(self, path: str, timeout_seconds: int = 300) -> Iterator[JSON]:
        """Yield watch events (``{"type": ..., "object": ...}``) until the server ends the watch."""
        sep = "&" if "?" in path else "?"
        full = f"{path}{sep}watch=true&allowWatchBookmarks=true&timeoutSeconds={timeout_seconds}"
        conn = self._connection(timeout_seconds + 30)
        try:
            conn.request("GET", full, headers=self._headers("application/json"))
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(resp.status, resp.read().decode())
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    event: JSON = json.loads(line)
                    yield event
        finally:
            conn.close()
