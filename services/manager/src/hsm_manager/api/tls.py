"""The API's TLS server context, loaded again when its certificate or key files change.

A Secret mounted in a pod changes by a symlink swap: the kubelet writes a new timestamped directory and
repoints ``..data`` at it, so the file names stay and their inodes change. gunicorn asks its
``ssl_context`` hook for a context on every accepted connection; the hook answers from this cache, which
compares the files' identity (inode, size, mtime) with the loaded ones and loads them again when they
differ. New connections get the new certificate, open ones keep theirs, and nothing restarts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_Identity = tuple[tuple[int, int, int, int], ...]


@dataclasses.dataclass(frozen=True)
class Files:
    """Where the serving certificate (PEM, with its chain) and its private key are."""

    cert: str
    key: str


def _identity(files: Files) -> _Identity:
    """What changes when either file is replaced (stat follows the kubelet's symlinks)."""
    found = []
    for path in (files.cert, files.key):
        st = os.stat(path)
        found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def load(files: Files) -> ssl.SSLContext:
    """A server context of files (TLS 1.2 and newer); ssl.SSLError or OSError when they do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=files.cert, keyfile=files.key)
    return context


class ReloadingContext:
    """The context of the files as they are now; the last good one while a change does not load."""

    def __init__(self, files: Files) -> None:
        self._files = files
        # gthread handshakes in several threads of one worker: one lock serialises the check and reload.
        self._lock = threading.Lock()
        self._identity = _identity(files)
        self._context = load(files)
        self._failed: _Identity | None = None

    def current(self) -> ssl.SSLContext:
        """The context for a new connection, loaded again first if the files changed."""
        with self._lock:
            try:
                identity = _identity(self._files)
            except OSError:
                return self._context  # mid-swap or briefly absent: keep serving what was loaded
            if identity == self._identity or identity == self._failed:
                return self._context
            try:
                context = load(self._files)
            except (ssl.SSLError, OSError) as error:
                # A certificate and key of different pairs (one written before the other): keep the last
                # good one and try again when the files change next. Said once per change.
                self._failed = identity
                log.warning(
                    "tls_reload_failed", extra={"cert": self._files.cert, "error": type(error).__name__}
                )
                return self._context
            self._identity, self._context, self._failed = identity, context, None
            log.info("tls_reloaded", extra={"cert": self._files.cert})
            return self._context


def gunicorn_hook(files: Files) -> Callable[[Any, Any], ssl.SSLContext]:
    """gunicorn's ``ssl_context`` setting: a function (config, default factory) → context.

    The files are loaded here, in the master: every worker starts from a good pair it inherits, and then
    checks the files itself. Loaded lazily instead, a worker whose first connection came after a swap to a
    bad pair had no last good one to serve.
    """
    reloading = ReloadingContext(files)

    def ssl_context(_config: Any, _default_factory: Any) -> ssl.SSLContext:
        return reloading.current()

    return ssl_context
