"""A minimal client of the project's REST API (/api/v1) for the scenario test and the demo."""

import base64
import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


class ApiCallError(RuntimeError):
    """The API answered with an error envelope or an unexpected status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclasses.dataclass(frozen=True)
class HsmApi:
    """The API at ``base_url`` (``http://<pod IP>:8090``) acting with a bearer token."""

    base_url: str
    token: str = dataclasses.field(repr=False)

    def call(self, method: str, route: str, body: Mapping[str, Any] | None = None) -> Any:
        """``method`` on ``/api/v1<route>``; returns the envelope's ``data``."""
        request = urllib.request.Request(  # noqa: S310 (http URL of our own API)
            f"{self.base_url}/api/v1{route}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())["data"]
        except urllib.error.HTTPError as err:
            raise ApiCallError(err.code, err.read().decode(errors="replace")) from None

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
