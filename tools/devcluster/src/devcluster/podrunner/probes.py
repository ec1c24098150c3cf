"""Readiness probes (tcpSocket, httpGet) run against the pod IP."""

import http.client
import socket
import ssl
from collections.abc import Mapping
from typing import Any


def _port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"named port {port} not declared")


def ready(container: Mapping[str, Any], pod_ip: str, timeout: float = 1.0) -> bool:
    """Whether the container's readiness probe passes now; no probe means ready once running."""
    probe = container.get("readinessProbe")
    if not probe:
        return True
    try:
        if "tcpSocket" in probe:
            host = probe["tcpSocket"].get("host") or pod_ip
            with socket.create_connection(
                (host, _port(container, probe["tcpSocket"]["port"])), timeout=timeout
            ):
                return True
        if "httpGet" in probe:
            get = probe["httpGet"]
            host = get.get("host") or pod_ip
            port = _port(container, get["port"])
            conn: http.client.HTTPConnection
            if get.get("scheme", "HTTP").upper() == "HTTPS":
                conn = http.client.HTTPSConnection(
                    host,
                    port,
                    timeout=timeout,
                    context=ssl._create_unverified_context(),  # noqa: S323
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", get.get("path", "/"))
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
    except (OSError, ValueError, http.client.HTTPException):
        return False
    # exec probes cannot run without a container; treat them as passing.
    return True
