"""Server TLS that follows its files: certificate, key and client CA re-read when the kubelet swaps them.

The kubelet updates a mounted Secret by pointing its ``..data`` symlink at a new directory, so a change
shows as a new inode behind each path. gRPC asks for the configuration at every handshake; a stat of the
three files decides whether to read them again. New files that do not load, or whose key does not match
the certificate, are refused: the server keeps the configuration it has and says so in the log.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hsm_agent import metrics

log = logging.getLogger(__name__)


class Refused(Exception):
    """The files do not form a usable configuration (the message names the problem, never the key)."""


@dataclasses.dataclass(frozen=True)
class Files:
    """Paths of the PEM files the server reads."""

    cert: str
    key: str
    client_ca: str | None = None
    """Clients must present a certificate one of these CAs signed (mutual TLS); None: no client auth."""


@dataclasses.dataclass(frozen=True)
class Loaded:
    """One consistent configuration, as read from the files."""

    cert: bytes
    key: bytes
    client_ca: bytes | None
    certificates: tuple[tuple[str, x509.Certificate], ...]
    """(role, certificate): "serving" for the leaf, "client-ca" for each CA of the bundle."""


Stamp = tuple[tuple[int, int, int, int], ...]


def _stamp(files: Files) -> Stamp:
    """What identifies the files' current content cheaply: device, inode, size, mtime of each target."""
    found = []
    for path in (files.cert, files.key, files.client_ca):
        if path is None:
            continue
        st = os.stat(path)  # follows the symlinks: a swapped ..data shows as another inode
        found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def load(files: Files) -> Loaded:
    """Read and check the files; raises Refused when they are unreadable or do not belong together."""
    try:
        cert, key = _read(files.cert), _read(files.key)
        client_ca = _read(files.client_ca) if files.client_ca else None
    except OSError as error:
        raise Refused(f"cannot read {error.filename}: {error.strerror}") from None
    try:
        leaf = x509.load_pem_x509_certificates(cert)[0]
    except ValueError:
        raise Refused("the certificate is not PEM") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise Refused("the key is not an unencrypted PEM private key") from None  # never the key itself
    if private.public_key() != leaf.public_key():
        raise Refused("the key does not match the certificate")
    roles: list[tuple[str, x509.Certificate]] = [("serving", leaf)]
    if client_ca is not None:
        try:
            roles.extend(("client-ca", ca) for ca in x509.load_pem_x509_certificates(client_ca))
        except ValueError:
            raise Refused("the client CA bundle is not PEM") from None
    return Loaded(cert, key, client_ca, tuple(roles))


def _configuration(loaded: Loaded) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(loaded.key, loaded.cert)], root_certificates=loaded.client_ca
    )


class Reloading:
    """Dynamic server credentials over Files; certificate expiries go to meters."""

    def __init__(self, files: Files, meters: metrics.Metrics) -> None:
        self.files = files
        self._meters = meters
        # Serialises the check and swap: gRPC calls the fetcher from its handshake threads.
        self._lock = threading.Lock()
        self._stamp = _stamp(files)
        self.loaded = load(files)  # at start-up unusable files are fatal: there is nothing to keep serving
        self._refused: Stamp | None = None
        self._publish(self.loaded)

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that ask fetch() for a newer configuration at every handshake."""
        return grpc.dynamic_ssl_server_credentials(
            _configuration(self.loaded),
            self.fetch,  # type: ignore[arg-type]  # the stub omits it, but gRPC takes None as "keep the current one"
            require_client_authentication=self.files.client_ca is not None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed and load, else None (gRPC keeps the current one)."""
        try:
            with self._lock:
                return self._check()
        except Exception as error:  # an escaping error would fail the handshake; keep serving instead
            log.error("tls reload failed", extra={"error": type(error).__name__})
            return None

    def _check(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            stamp = _stamp(self.files)
        except OSError:
            # Mid-swap or removed: the next handshake looks again.
            return None
        if stamp in (self._stamp, self._refused):
            return None
        try:
            loaded = load(self.files)
        except Refused as error:
            self._refused = stamp
            self._meters.tls_reloads.labels("refused").inc()
            log.error("tls reload refused; serving the previous certificate", extra={"reason": str(error)})
            return None
        self._stamp, self._refused, self.loaded = stamp, None, loaded
        self._publish(loaded)
        self._meters.tls_reloads.labels("loaded").inc()
        log.info(
            "tls reloaded",
            extra={"serving_not_after": loaded.certificates[0][1].not_valid_after_utc.isoformat()},
        )
        return _configuration(loaded)

    def _publish(self, loaded: Loaded) -> None:
        gauge = self._meters.certificate_expiry
        gauge.clear()
        for role, cert in loaded.certificates:
            gauge.labels(role, cert.subject.rfc4514_string(), format(cert.serial_number, "x")).set(
                cert.not_valid_after_utc.timestamp()
            )
