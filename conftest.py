"""Shared by every test: child processes import what the test imports; a stand-in reviewer of metrics tokens.

Pants runs each test from a PEX that finds the project's source roots through ``PEX_EXTRA_SYS_PATH``, which
only the PEX bootstrap reads; a child started with the venv's interpreter would not find them. With the uv
environment (no such variable) this does nothing.

Every service serves /metrics over HTTPS to callers the API server allows (``hsm_metricsauth``); tests that
read a process's metrics point it at ``review_api``, which answers TokenReviews and SubjectAccessReviews
over plain HTTP (the review's shape is tested in libs/metricsauth; the real API server's answers in
tests/e2e/test_metrics_auth.py).
"""

import dataclasses
import http.client
import http.server
import json
import os
import pathlib
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

_roots = os.environ.get("PEX_EXTRA_SYS_PATH")
if _roots:
    _paths = [os.path.abspath(root) for root in _roots.split(os.pathsep) if root]
    _inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*_paths, *([_inherited] if _inherited else [])])


@dataclasses.dataclass(frozen=True)
class Scraped:
    status: int
    headers: dict[str, str]
    text: str


class ReviewApi:
    """A stand-in API server: ``reader`` may get /metrics, ``stranger`` is a valid token that may not, any
    other token is not valid; the reviewing process itself authenticates with ``own``."""

    reader = "reader-token"
    stranger = "stranger-token"
    own = "own-token"
    users = {reader: "system:serviceaccount:monitoring:prometheus", stranger: "system:serviceaccount:x:y"}

    def __init__(self, root: pathlib.Path) -> None:
        self.reviews: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        """(path, headers, body) of each review received."""
        self.failing = False
        """Answer every review with 500 (an API server in trouble)."""
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.reviews.append((self.path, dict(self.headers), body))
                if stand_in.failing or self.headers.get("Authorization") != f"Bearer {stand_in.own}":
                    self._send(500 if stand_in.failing else 401, {"kind": "Status"})
                elif self.path.endswith("/tokenreviews"):
                    name = stand_in.users.get(body["spec"]["token"])
                    status = {"authenticated": True, "user": {"username": name}} if name else {}
                    self._send(201, {**body, "status": status})
                else:
                    allowed = body["spec"]["user"] == stand_in.users[stand_in.reader]
                    self._send(201, {**body, "status": {"allowed": allowed}})

            def _send(self, code: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.kubeconfig = root / "reviews.kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": self.url}}],
                    "users": [{"name": "u", "user": {"token": self.own}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )

    def scrape(self, port: int, token: str | None = reader, path: str = "/metrics") -> Scraped:
        """GET path of the HTTPS endpoint on 127.0.0.1:port with token (self-signed: not verified)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
            response = connection.getresponse()
            return Scraped(response.status, dict(response.getheaders()), response.read().decode())
        finally:
            connection.close()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def review_api(tmp_path: pathlib.Path) -> Iterator[ReviewApi]:
    """The stand-in reviewer of metrics tokens, with a kubeconfig that points a process at it."""
    found = ReviewApi(tmp_path)
    yield found
    found.close()


@pytest.fixture(scope="module")
def module_review_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewApi]:
    """``review_api`` for a module's long-lived processes (a test that makes it fail must undo that)."""
    found = ReviewApi(tmp_path_factory.mktemp("reviews"))
    yield found
    found.close()
