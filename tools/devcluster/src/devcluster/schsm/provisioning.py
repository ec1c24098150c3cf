"""A new device's memory: its device certificate, its token label and PINs, as a factory would leave it.

OpenSC reads the serial number from the device certificate's holder reference (EF.C_DevAut, 2F02) and the
token label from EF.TokenInfo (2F03). The certificate here has the structure of a SmartCard-HSM's CV
certificate with random key and signature bytes: OpenSC decodes it but, without OpenPACE, verifies nothing.
"""

from __future__ import annotations

import os

from . import flash, tlv

DEVICE_CERTIFICATE = 0x2F02
TOKEN_INFO = 0x2F03
SERIAL_MAX = 11
"""Characters of a serial: the holder reference is at most 16, and it ends in a 5-digit sequence number."""
CAPACITY_4K = 76 * 1024
"""Flash for files of a SmartCard-HSM 4K or Nitrokey HSM 2 (the published "76 KB of EEPROM")."""
USER_PIN_TRIES = 3
SO_PIN_TRIES = 15
_ECDSA_SHA256 = bytes.fromhex("04007F00070202020203")


def device_certificate(serial: str) -> bytes:
    """A CV certificate (tag 7F21) whose holder reference is ``serial`` followed by "00001"."""
    body = b"".join(
        (
            tlv.encode(0x5F29, b"\x00"),
            tlv.encode(0x42, b"DETESTCA00001"),
            tlv.encode(0x7F49, tlv.encode(0x06, _ECDSA_SHA256) + tlv.encode(0x86, b"\x04" + os.urandom(64))),
            tlv.encode(0x5F20, (serial + "00001").encode()),
            tlv.encode(0x5F25, bytes([2, 6, 0, 1, 0, 1])),
            tlv.encode(0x5F24, bytes([4, 6, 0, 1, 0, 1])),
        )
    )
    return tlv.encode(0x7F21, tlv.encode(0x7F4E, body) + tlv.encode(0x5F37, os.urandom(64)))


def token_info(label: str) -> bytes:
    """A PKCS#15 TokenInfo (DER) with version 0, ``label`` and no flags."""
    fields = tlv.encode(0x02, b"\x00") + tlv.encode(0x80, label.encode()) + tlv.encode(0x03, b"\x00\x00")
    return tlv.encode(0x30, fields)


def so_pin_bytes(so_pin: str) -> bytes:
    """The 8 bytes of an SO PIN given, as OpenSC takes it, as 16 hexadecimal digits."""
    value = bytes.fromhex(so_pin)
    if len(value) != 8:
        raise ValueError("the SO PIN is 16 hexadecimal digits")
    return value


def new_device(serial: str, capacity: int = CAPACITY_4K, so_pin: str = "3537363231383830") -> flash.Memory:
    """A device fresh from the factory: a certificate, an SO PIN, no user PIN (not initialised)."""
    if not (0 < len(serial) <= SERIAL_MAX and serial.isalnum() and serial.isascii()):
        raise ValueError(f"a serial is 1 to {SERIAL_MAX} ASCII letters and digits")
    return flash.Memory(
        serial=serial,
        capacity=capacity,
        files={DEVICE_CERTIFICATE: device_certificate(serial)},
        pins={flash.SO_PIN: flash.Pin(so_pin_bytes(so_pin), SO_PIN_TRIES, SO_PIN_TRIES)},
    )


def initialise(memory: flash.Memory, user_pin: bytes, label: str | None, tries: int = USER_PIN_TRIES) -> None:
    """What INITIALIZE DEVICE does, followed by writing the label: every file but the certificate goes."""
    memory.files = {DEVICE_CERTIFICATE: memory.files[DEVICE_CERTIFICATE]}
    memory.pins[flash.USER_PIN] = flash.Pin(user_pin, tries, tries)
    if label is not None:
        memory.files[TOKEN_INFO] = token_info(label)
