"""A TLS server context that follows its certificate and key files, loaded again when they change.

A Secret mounted in a pod changes by a symlink swap: the kubelet writes a new timestamped directory and
repoints ``..data`` at it, so the file names stay and their inodes change. A server asks ``current()`` for
the context of each new connection; it compares the files' identity (inode, size, mtime) with the loaded
ones and loads them again when they differ. New connections get the new certificate, open ones keep
theirs, and nothing restarts. The REST API and every metrics endpoint serve their certificates this way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import threading

log = logging.getLogger(__name__)

_Identity = tuple[tuple[int, int, int, int], ...]


@dataclasses.dataclass(frozen=True)
class Files:
    """Where a serving certificate (PEM, with its chain) and its private key are."""

    cert: str
    key: str


def _identity(files: Files) -> _Identity:
    """What changes when either file is replaced (stat follows the kubelet's symlinks)."""
    found = []
    for path in (files.cert, files.key):
        st = os.stat(path)
        found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def server_context() -> ssl.SSLContext:
    """An empty server context of the one policy every endpoint serves: TLS 1.2 and newer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def load_pem(context: ssl.SSLContext, pem: bytes) -> None:
    """Load a PEM private key and certificate chain held in memory only into context.

    ``load_cert_chain`` reads files; an anonymous memory file stands in for one, so the key touches no
    disk (and a read-only root file system is no obstacle).
    """
    fd = os.memfd_create("tls-pair", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def load(files: Files) -> ssl.SSLContext:
    """A server context of files; ssl.SSLError or OSError when they do not load."""
    context = server_context()
    context.load_cert_chain(certfile=files.cert, keyfile=files.key)
    return context


class ReloadingContext:
    """The context of the files as they are now; the last good one while a change does not load."""

    def __init__(self, files: Files) -> None:
        self.files = files
        # Handshakes run in several threads (gthread workers, the metrics server's handlers): one lock
        # serialises the check and the reload.
        self._lock = threading.Lock()
        self._identity = _identity(files)
        self._context = load(files)
        self._failed: _Identity | None = None

    def current(self) -> ssl.SSLContext:
        """The context for a new connection, loaded again first if the files changed."""
        with self._lock:
            try:
                identity = _identity(self.files)
            except OSError:
                return self._context  # mid-swap or briefly absent: keep serving what was loaded
            if identity == self._identity or identity == self._failed:
                return self._context
            try:
                context = load(self.files)
            except (ssl.SSLError, OSError) as error:
                # A certificate and key of different pairs (one written before the other): keep the last
                # good one and try again when the files change next. Said once per change.
                self._failed = identity
                log.warning(
                    "tls_reload_failed", extra={"cert": self.files.cert, "error": type(error).__name__}
                )
                return self._context
            self._identity, self._context, self._failed = identity, context, None
            log.info("tls_reloaded", extra={"cert": self.files.cert})
            return self._context
