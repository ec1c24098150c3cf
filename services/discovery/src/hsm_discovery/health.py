"""The /healthz and /readyz endpoints of the kubelet's probes: where service state becomes HTTP statuses.

Metrics have an endpoint of their own (HTTPS, for allowed callers): probes come without credentials.
"""

from __future__ import annotations

import http
import http.server
import threading
from collections.abc import Callable

from . import errors


def parse_listen(address: str) -> tuple[str, int]:
    """(host, port) of ``host:port``; raises errors.ConfigError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise errors.ConfigError(f"invalid listen address {address!r}: use host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a pod's probes come from outside it


class Server:
    """Serves the probes from a daemon thread; live and ready are asked on every request."""

    def __init__(self, address: str, live: Callable[[], bool], ready: Callable[[], bool]) -> None:
        checks = {"/healthz": live, "/readyz": ready}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path in checks:
                    ok = checks[self.path]()
                    status = http.HTTPStatus.OK if ok else http.HTTPStatus.SERVICE_UNAVAILABLE
                    self._answer(status, b"ok\n" if ok else b"not ok\n", "text/plain")
                else:
                    self._answer(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

            def _answer(self, status: http.HTTPStatus, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Probes every few seconds would drown the log."""

        try:
            self._httpd = http.server.ThreadingHTTPServer(parse_listen(address), Handler)
        except OSError as err:
            raise errors.ConfigError(f"cannot listen on {address}: {err.strerror}") from err
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
