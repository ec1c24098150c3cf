"""A minimal client of the project's REST API (/api/v1) for the scenario test and the demo, over HTTPS
verified against the API's CA and the Service's name (the URL's host is a loopback forwarder)."""

import base64
import dataclasses
import functools
import http.client
import json
import pathlib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

#: Connections tried for one idempotent call before its failure is raised.
CONNECT_ATTEMPTS = 3


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that verifies the certificate for server_name rather than the host dialled."""

    def __init__(self, host: str, *, server_name: str, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(host, context=context, **kwargs)
        self._server_name = server_name
        self._verifying = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._verifying.wrap_socket(self.sock, server_hostname=self._server_name)


class _NamedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(context=context)
        self._named_context = context
        self._server_name = server_name

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_NamedHTTPSConnection, server_name=self._server_name)
        return self.do_open(connection, req, context=self._named_context)


class ApiCallError(RuntimeError):
    """The API answered with an error envelope or an unexpected status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclasses.dataclass(frozen=True)
class HsmApi:
    """The API at ``base_url`` (``https://127.0.0.1:<forwarded port>``) acting with a bearer token."""

    base_url: str
    token: str = dataclasses.field(repr=False)
    ca_file: pathlib.Path | None = None
    """The CA the API's certificate is verified with (None: the system's trust store)."""
    server_name: str | None = None
    """The name the certificate must carry, when not the URL's host."""

    def opener(self) -> urllib.request.OpenerDirector:
        """A urllib opener that verifies the API as this client does."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.server_name:
            return urllib.request.build_opener(_NamedHTTPSHandler(context, self.server_name))
        return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def call(self, method: str, route: str, body: Mapping[str, Any] | None = None) -> Any:
        """``method`` on ``/api/v1<route>``; returns the envelope's ``data``."""
        request = urllib.request.Request(  # noqa: S310 (https URL of our own API)
            f"{self.base_url}/api/v1{route}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                with self.opener().open(request, timeout=30) as response:
                    return json.loads(response.read())["data"]
            except urllib.error.HTTPError as err:
                raise ApiCallError(err.code, err.read().decode(errors="replace")) from None
            except urllib.error.URLError:
                # No answer at all (the connection or its handshake broke, e.g. while a Service's endpoints
                # change): the calls made here are idempotent, so a fresh connection may try again.
                if method == "POST" or attempt == CONNECT_ATTEMPTS - 1:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def put_secret(self, path: str, data: Mapping[str, bytes], description: str = "") -> Any:
        """Create or replace the secret at ``path`` (``<namespace>/<name>``) on every device."""
        encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
        return self.call(
            "PUT", f"/hsm/secrets/{path}", {"data": encoded, "metadata": {"description": description}}
        )

    def get_secret(self, path: str) -> dict[str, bytes]:
        """The secret's data, decoded."""
        found = self.call("GET", f"/hsm/secrets/{path}")
        return {key: base64.b64decode(value) for key, value in found["data"].items()}

    def versions(self, path: str) -> dict[str, Any]:
        """What every device holds for ``path`` (``inSync``, ``devices[]``)."""
        found: dict[str, Any] = self.call("GET", f"/hsm/secrets/{path}/versions")
        return found

    def mirror_sync(self) -> dict[str, Any]:
        """Repair divergence between the devices now."""
        found: dict[str, Any] = self.call("POST", "/hsm/mirror/sync", {})
        return found
