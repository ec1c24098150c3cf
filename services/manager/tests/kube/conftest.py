"""A stand-in Kubernetes API server on 127.0.0.1 (plain HTTP) and kubeconfig files that point at it."""

from __future__ import annotations

import collections.abc
import dataclasses
import http.server
import json
import pathlib
import threading
from typing import Any

import pytest

Answer = tuple[int, dict[str, Any] | str]
"""(status, JSON body, or raw text such as a watch's lines)."""


@dataclasses.dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any]
    query: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class ApiServer:
    """Answers (method, path) with what the test set in answers and records every request.

    A list of answers is given out one per request, in order (the pages of a list, say).
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer | list[Answer]] = {}
        self.requests: list[Request] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                path, _, query = self.path.partition("?")
                server.requests.append(Request(self.command, path, body, query, dict(self.headers)))
                found = server.answers.get((self.command, path), (404, {"kind": "Status"}))
                status, answer = found.pop(0) if isinstance(found, list) else found
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status in (429, 503):
                    # As the API server turns a request away unprocessed (it says 1 s; no wait here).
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def write_kubeconfig(path: pathlib.Path, url: str) -> pathlib.Path:
    """A kubeconfig whose one context reaches url with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def api_server() -> collections.abc.Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.close()


@pytest.fixture
def outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """No in-cluster ServiceAccount, whatever the machine running the tests has."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
