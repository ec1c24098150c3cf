"""HTTP on 8093 for the kubelet's probes: /healthz (alive, last token probe), /readyz (logged in, index
loaded). Metrics have an endpoint of their own (HTTPS, for allowed callers): probes come without credentials.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any

from hsm_agent.store import secret_store

#: /healthz fails when the token has not answered a probe for this long while logged in.
STALE_PROBE_SECONDS = 60.0


class _Handler(http.server.BaseHTTPRequestHandler):
    store: secret_store.SecretStore

    def do_GET(self) -> None:
        if self.path == "/healthz":
            probe = self.store.last_probe_ok
            stale = self.store.ready and (probe is None or time.time() - probe > STALE_PROBE_SECONDS)
            self._json(
                503 if stale else 200, {"alive": True, "state": self.store.state.value, "lastProbe": probe}
            )
        elif self.path == "/readyz":
            ready = self.store.ready
            body = {"ready": ready, "state": self.store.state.value, "message": self.store.message}
            self._json(200 if ready else 503, body)
        else:
            self._json(404, {"error": "not found"})

    def _json(self, code: int, body: dict[str, Any]) -> None:
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: probes every few seconds would flood the logs."""


class HealthServer:
    """The health HTTP server on its own thread."""

    def __init__(self, listen: str, store: secret_store.SecretStore) -> None:
        host, _, port = listen.rpartition(":")
        handler = type("Handler", (_Handler,), {"store": store})
        self._server = http.server.ThreadingHTTPServer((host.strip("[]"), int(port)), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
