"""The metrics endpoint's serving certificate: files from a mounted Secret, or one made at start.

The operator issues every component a leaf of its CA (Secret hsm-metrics-tls, mounted optionally), so a
scraper verifies the endpoint with the CA the operator publishes. Files are read again when the kubelet
swaps them (``hsm_common.tlsfiles``), so a renewed certificate needs no restart. Until they exist (the pod
started before the Secret did) and without a directory at all, the process serves a self-signed certificate
made in memory, as controller-runtime's secure metrics do: encrypted, though no scraper can verify it.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import ssl
import threading
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm_common import tlsfiles

log = logging.getLogger(__name__)

#: A self-signed certificate's lifetime, and how long before its end it is replaced by a new one.
SELF_SIGNED_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


class Source(Protocol):
    def context(self) -> ssl.SSLContext:
        """The server context for a new connection."""

    def not_after(self) -> float:
        """When the certificate served now expires (Unix time)."""


class Files:
    """A certificate and key in files, reloaded when they change."""

    def __init__(self, files: tlsfiles.Files) -> None:
        self._reloading = tlsfiles.ReloadingContext(files)
        # Handler threads and the scrape's collector ask at once.
        self._lock = threading.Lock()
        self._described: ssl.SSLContext | None = None
        self._not_after = 0.0

    def context(self) -> ssl.SSLContext:
        return self._reloading.current()

    def not_after(self) -> float:
        current = self._reloading.current()
        with self._lock:
            if current is not self._described:
                with open(self._reloading.files.cert, "rb") as handle:
                    leaf = x509.load_pem_x509_certificates(handle.read())[0]
                self._described, self._not_after = current, leaf.not_valid_after_utc.timestamp()
            return self._not_after


def _self_signed(now: datetime.datetime) -> tuple[bytes, datetime.datetime]:
    """A new key and a certificate for it, as one PEM (key first), and the certificate's notAfter."""
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host} metrics")])
    not_after = now + datetime.timedelta(days=SELF_SIGNED_DAYS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    return pem, not_after


def _context_of(pem: bytes) -> ssl.SSLContext:
    """A server context of a PEM key and certificate held in memory only."""
    context = tlsfiles.server_context()
    tlsfiles.load_pem(context, pem)
    return context


class SelfSigned:
    """A self-signed certificate made in memory, and made again a month before it expires."""

    def __init__(self) -> None:
        # Handler threads ask at once; one of them renews.
        self._lock = threading.Lock()
        self._context, self._not_after = self._make()

    @staticmethod
    def _make() -> tuple[ssl.SSLContext, datetime.datetime]:
        pem, not_after = _self_signed(datetime.datetime.now(datetime.UTC))
        return _context_of(pem), not_after

    def context(self) -> ssl.SSLContext:
        with self._lock:
            if datetime.datetime.now(datetime.UTC) > self._not_after - RENEW_BEFORE:
                self._context, self._not_after = self._make()
            return self._context

    def not_after(self) -> float:
        with self._lock:
            return self._not_after.timestamp()


def _present(files: tlsfiles.Files) -> bool:
    return os.path.exists(files.cert) and os.path.exists(files.key)


class Mounted:
    """The files of a Secret that may not exist yet: a self-signed certificate until they appear, then theirs.

    A Secret volume marked optional lets the pod start before the operator has issued the Secret; the
    kubelet fills the directory in once it exists, and the next connection gets the files' certificate.
    """

    def __init__(self, files: tlsfiles.Files) -> None:
        """OSError or ssl.SSLError when the files are there but do not load: a wrong setting, said now."""
        self._files = files
        # Handler threads and the scrape's collector ask at once; one of them switches to the files.
        self._lock = threading.Lock()
        self._awaiting = not _present(files)
        self._refused = False
        self._source: Source = SelfSigned() if self._awaiting else Files(files)

    @property
    def awaiting(self) -> bool:
        """True while the files have not loaded and a self-signed certificate is served."""
        with self._lock:
            return self._awaiting

    def _current(self) -> Source:
        with self._lock:
            if self._awaiting and _present(self._files):
                try:
                    self._source = Files(self._files)
                except (OSError, ssl.SSLError) as error:
                    # Tried again at the next connection (the kubelet may swap good files in); said once.
                    if not self._refused:
                        log.warning(
                            "metrics_certificate_unloadable",
                            extra={"cert": self._files.cert, "error": type(error).__name__},
                        )
                        self._refused = True
                else:
                    self._awaiting = False
                    log.info("metrics_certificate_loaded", extra={"cert": self._files.cert})
            return self._source

    def context(self) -> ssl.SSLContext:
        return self._current().context()

    def not_after(self) -> float:
        return self._current().not_after()
