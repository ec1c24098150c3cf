"""The certificate an agent serves, read by a handshake that does not verify it: to say when a refused one
expired. Nothing trusts what it reads; it only words a message."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable

from cryptography import x509

from hsm_common import tlsfiles
from hsmproto import channel

#: Seconds the handshake may take: the agent has just answered gRPC's, so it is there.
TIMEOUT = 2.0
#: Seconds an answer is reused: refused calls come in bursts (every sync pass of the device's HSMSecrets),
#: and an agent serves the same certificate until the kubelet brings it a new one.
TTL = 30.0


def not_after(address: str, tls: channel.ClientTLS, timeout: float = TIMEOUT) -> datetime.datetime | None:
    """notAfter of the certificate the agent at address ("host:port") serves; None when no handshake
    completes.

    Our client leaf is presented, as on the gRPC channel: the agent requires one, and a handshake it
    accepts leaves no failure in its log.
    """
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        tlsfiles.load_pem(context, tls.client_key + b"\n" + tls.client_cert)
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=tls.server_name) as wrapped,
        ):
            der = wrapped.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).not_valid_after_utc if der else None
    except (OSError, ValueError):  # unreachable, refused handshake (ssl.SSLError), unreadable certificate
        return None


class Expiry:
    """notAfter of what one agent serves, read at most every TTL seconds."""

    def __init__(
        self, address: str, tls: channel.ClientTLS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._address = address
        self._tls = tls
        self._clock = clock
        # One handshake at a time per agent: the refused calls of a burst wait for it and share its answer.
        self._lock = threading.Lock()
        self._read: tuple[float, datetime.datetime | None] | None = None

    def __call__(self) -> datetime.datetime | None:
        with self._lock:
            now = self._clock()
            if self._read is None or now - self._read[0] >= TTL:
                self._read = (now, not_after(self._address, self._tls))
            return self._read[1]
