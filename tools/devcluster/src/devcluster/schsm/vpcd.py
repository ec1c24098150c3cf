"""The card's side of vpcd, the virtual reader driver that pcscd loads (Debian's ``vsmartcard-vpcd``).

We speak vpcd's protocol ourselves rather than run vicc (``vsmartcard-vpicc``) with a card class of ours:
the protocol is a few lines, while vicc needs its modules put on PYTHONPATH from Debian's site-packages and
a ``Crypto`` shim for Debian's ``Cryptodome``, and would run our card in Debian's Python, not the project's.

The protocol: the card connects to vpcd over TCP (vpcd listens on 0.0.0.0:35963 and cannot be told to bind
loopback, so run it inside a network namespace of its own). Each message either way is a 2-byte big-endian
length and the payload. A 1-byte payload from vpcd is a control: power off (0), power on (1), reset (2) or
"send the ATR" (4, answered with the ATR). Longer payloads are command APDUs, each answered with the
response APDU. The TCP connection is the card's presence in the reader: closing it removes the card.
"""

from __future__ import annotations

import logging
import socket
import time

from . import card

PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4

log = logging.getLogger(__name__)


class Disconnected(ConnectionError):
    """vpcd closed the connection (pcscd stopped or restarted)."""


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        # vpcd writes a message's length and its payload separately: with Nagle on its side, the payload
        # waits for our ACK of the length, which Linux delays by up to 40 ms unless asked not to.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Disconnected("vpcd closed the connection")
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


class Link:
    """One card in vpcd's reader: connects, answers vpcd's messages, and disconnects to leave the reader."""

    def __init__(
        self, hsm: card.SmartCardHsm, host: str = "127.0.0.1", port: int = PORT, latency: float = 0.0
    ) -> None:
        self.card = hsm
        self._address = (host, port)
        self._latency = latency
        """Seconds added to each command: a device's own time per APDU, which the emulator does not have."""
        self.sock: socket.socket | None = None

    def connect(self) -> bool:
        """Try once to put the card in the reader; False while vpcd does not listen yet."""
        try:
            self.sock = socket.create_connection(self._address, timeout=1.0)
        except OSError:
            return False
        self.sock.settimeout(None)
        self.card.power_on()
        log.info("card inserted")
        return True

    def disconnect(self) -> None:
        """Take the card out of the reader (what pulling a USB token does)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            log.info(
                "card removed: %d commands so far, at most %d data bytes in, %d out",
                self.card.commands,
                self.card.largest_command,
                self.card.largest_response,
            )

    def handle_one(self) -> None:
        """Read one message from vpcd and answer it; Disconnected when vpcd went away."""
        if self.sock is None:
            raise Disconnected("not connected")
        size = int.from_bytes(_read_exactly(self.sock, 2), "big")
        payload = _read_exactly(self.sock, size)
        if size == 1:
            if payload[0] == GET_ATR:
                _send(self.sock, card.ATR)
            elif payload[0] in (POWER_OFF, POWER_ON, RESET):
                self.card.power_on()
            return
        answer = self.card.process(payload)
        if self._latency:
            time.sleep(self._latency)
        _send(self.sock, answer)
