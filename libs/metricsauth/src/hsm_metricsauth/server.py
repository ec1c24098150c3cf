"""``/metrics`` over HTTPS to callers whose bearer token may get it: the metrics endpoint of every service.

The rule of kube-rbac-proxy and controller-runtime's secure metrics: no token, or one the API server does
not accept, is 401; a token whose user may not ``get`` the non-resource URL ``/metrics`` is 403; an API
server that cannot be asked is 503. The TLS handshake runs in the connection's own thread, so a client
that speaks plain HTTP (or stalls) gets nothing and holds up nobody.
"""

from __future__ import annotations

import argparse
import dataclasses
import http
import http.server
import logging
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any

import prometheus_client
from prometheus_client import registry as prometheus_registry
from prometheus_client.core import GaugeMetricFamily

from hsm_common import settings, tlsfiles

from . import certificates, credentials, gate, reviews

log = logging.getLogger(__name__)

#: Seconds a connection may take for its handshake and for each read or write after it.
CONNECTION_TIMEOUT = 10.0


class SetupError(Exception):
    """The endpoint cannot start: no credentials for the reviews, no certificate, or the address is taken."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a process serves its metrics."""

    listen: str
    """host:port of the HTTPS endpoint (port 0 picks a free one)."""
    cert_dir: str = ""
    """A directory with ``tls.crt`` and ``tls.key`` (a mounted kubernetes.io/tls Secret), read again when
    they change, and served once they appear when they are not there yet; empty: a self-signed certificate
    made at start."""
    kubeconfig: str = ""
    """Kubeconfig for the reviews; empty: the pod's ServiceAccount, else the default kubeconfig."""


def add_flags(parser: argparse.ArgumentParser, prefix: str, listen: str) -> None:
    """The flags of a service's metrics endpoint (``--metrics-listen``, default listen, and
    ``--metrics-cert-dir``); ``from_flags`` reads them back."""
    settings.add_flag(
        parser,
        prefix,
        "--metrics-listen",
        default=listen,
        help="address of /metrics (HTTPS, for callers allowed to get /metrics; empty: none)",
    )
    settings.add_flag(
        parser,
        prefix,
        "--metrics-cert-dir",
        default="",
        help="directory of the metrics certificate's tls.crt and tls.key, served once present "
        "(until then, and when empty: self-signed)",
    )


def from_flags(args: argparse.Namespace) -> Settings | None:
    """The endpoint the flags of ``add_flags`` ask for; None when ``--metrics-listen`` is empty."""
    return Settings(args.metrics_listen, args.metrics_cert_dir) if args.metrics_listen else None


def _address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SetupError(f"invalid metrics address {listen!r}: use host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - Prometheus scrapes from another pod


class _Handler(http.server.BaseHTTPRequestHandler):
    gate: gate.Gate
    registry: prometheus_registry.CollectorRegistry
    timeout = CONNECTION_TIMEOUT

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/metrics":
            self._answer(http.HTTPStatus.NOT_FOUND, b"not found\n")
            return
        try:
            verdict = self.gate.check(self.headers.get("Authorization"))
        except reviews.Unavailable as error:
            log.warning("metrics_review_unavailable", extra={"error": str(error)})
            self._answer(http.HTTPStatus.SERVICE_UNAVAILABLE, b"the token could not be reviewed\n")
            return
        if verdict is reviews.Verdict.UNAUTHENTICATED:
            self._answer(http.HTTPStatus.UNAUTHORIZED, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
        elif verdict is reviews.Verdict.FORBIDDEN:
            self._answer(http.HTTPStatus.FORBIDDEN, b"forbidden: get /metrics is not allowed\n")
        else:
            body = prometheus_client.generate_latest(self.registry)
            self._answer(http.HTTPStatus.OK, body, {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    def _answer(self, status: http.HTTPStatus, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: a line per scrape would flood the logs (and a request line is no place for tokens)."""


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], certificate: certificates.Source
    ) -> None:
        self._certificate = certificate
        # An IPv6 host needs an IPv6 socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT)
        try:
            tls = self._certificate.context().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # plain HTTP, a stalled or failed handshake: the connection closes unanswered
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class MetricsServer:
    """The HTTPS endpoint on a daemon thread."""

    def __init__(
        self,
        listen: str,
        registry: prometheus_registry.CollectorRegistry,
        access: gate.Gate,
        certificate: certificates.Source,
    ) -> None:
        handler = type("Handler", (_Handler,), {"gate": access, "registry": registry})
        try:
            self._server = _TLSServer(_address(listen), handler, certificate)
        except OSError as error:
            raise SetupError(f"cannot listen on {listen}: {error.strerror}") from None
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Expiry:
    """A gauge of the served certificate's notAfter, read at each scrape."""

    def __init__(self, name: str, certificate: certificates.Source) -> None:
        self._name = name
        self._certificate = certificate

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, "notAfter of the metrics endpoint's serving certificate")

    def describe(self) -> Iterable[prometheus_client.Metric]:
        return [self._family()]

    def collect(self) -> Iterable[prometheus_client.Metric]:
        family = self._family()
        family.add_metric([], self._certificate.not_after())
        return [family]


def _certificate(cert_dir: str) -> certificates.Source:
    if not cert_dir:
        return certificates.SelfSigned()
    files = tlsfiles.Files(os.path.join(cert_dir, "tls.crt"), os.path.join(cert_dir, "tls.key"))
    try:
        return certificates.Mounted(files)
    except (OSError, ssl.SSLError) as error:
        raise SetupError(
            f"the metrics certificate in {cert_dir} does not load: {type(error).__name__}"
        ) from None


def build(
    settings: Settings, registry: prometheus_registry.CollectorRegistry, expiry_metric: str
) -> MetricsServer:
    """The endpoint serving registry as settings say (listening, not yet started), with the certificate's
    notAfter as expiry_metric in registry."""
    try:
        api = credentials.load(settings.kubeconfig)
    except credentials.Missing as error:
        raise SetupError(str(error)) from None
    certificate = _certificate(settings.cert_dir)
    server = MetricsServer(settings.listen, registry, gate.Gate(reviews.Reviewer(api)), certificate)
    registry.register(_Expiry(expiry_metric, certificate))
    self_signed = not isinstance(certificate, certificates.Mounted) or certificate.awaiting
    log.info("metrics_listening", extra={"port": server.port, "self_signed": self_signed})
    return server
