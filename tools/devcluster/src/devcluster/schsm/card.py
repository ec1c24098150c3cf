"""The SmartCard-HSM's commands for PINs and files: one APDU in, one response out. No I/O but the flash.

Commands (CLA, INS as the SmartCard-HSM reference and OpenSC's sc-hsm driver use them):
SELECT (A4, the applet by AID or an EF by identifier), VERIFY (20, with a PIN or, without, to query the
retry counter), CHANGE REFERENCE DATA (24), RESET RETRY COUNTER (2C), INITIALIZE DEVICE (80 50),
ENUMERATE OBJECTS (80 58), READ BINARY (B0, and B1 with offset tag 54), UPDATE BINARY (D7 with offset tag
54 and data tag 53; it creates the EF), DELETE FILE (E4) and GET CHALLENGE (84).

Emulator choices where the reference leaves room: the applet is selected at power-on; an UPDATE BINARY at
offset 0 replaces the whole EF (so a reused identifier never keeps a stale tail); writing or deleting any
EF and reading PIN-protected data (prefix CD) need the user PIN; reading keys (prefix CC) is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from . import apdu, flash, provisioning, tlv

AID = bytes.fromhex("E82B0601040181C31F0201")
ATR = bytes.fromhex("3BDE18FF8191FE1FC38031815448534D317380214081071C")
"""The ATR of a SmartCard-HSM 4K, one of those OpenSC's sc-hsm driver matches."""
VERSION = (3, 5)
"""Firmware version reported in the applet's FCP (OpenSC shows it in the card name)."""
MAX_COMMAND_DATA = 1439
"""The card's APDU buffer: OpenSC sends at most 1431 bytes of file data plus 8 of TLV per UPDATE BINARY."""
MAX_CHALLENGE = 1024
USER_PIN_LENGTHS = range(6, 17)

PROTECTED_DATA_PREFIX = 0xCD
"""Data objects behind the user PIN (readable ones use 0xCF)."""
KEY_PREFIX = 0xCC

Handler = Callable[["SmartCardHsm", apdu.Command], bytes]


class SmartCardHsm:
    """One card: its flash (kept across power cycles) and what it forgets at power-off (PINs verified,
    the selected file)."""

    def __init__(self, memory: flash.Memory, store: flash.Flash | None) -> None:
        self.memory = memory
        self._store = store
        self._verified: set[int] = set()
        self._current: int | None = None
        self.commands = 0
        self.largest_command = 0
        """Most data bytes in one command so far (what the driver's APDU size comes to)."""
        self.largest_response = 0

    def power_on(self) -> None:
        """Power-on and reset both forget the session."""
        self._verified.clear()
        self._current = None

    def process(self, raw: bytes) -> bytes:
        """The response APDU to the command APDU ``raw``."""
        self.commands += 1
        try:
            command = apdu.parse(raw)
        except apdu.MalformedApdu:
            return apdu.response(apdu.WRONG_LENGTH)
        if len(command.data) > MAX_COMMAND_DATA:
            return apdu.response(apdu.WRONG_LENGTH)
        handler = _COMMANDS.get((command.cla & 0x80, command.ins))
        if handler is None:
            return apdu.response(apdu.INS_NOT_SUPPORTED)
        try:
            answer = handler(self, command)
        except tlv.MalformedTlv:
            return apdu.response(apdu.WRONG_DATA)
        body, sw = answer[:-2], answer[-2:]
        if command.le and len(body) > command.le:
            body = body[: command.le]
        self.largest_command = max(self.largest_command, len(command.data))
        self.largest_response = max(self.largest_response, len(body))
        return body + sw

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(self.memory)

    # -- applet and file selection

    def _select(self, command: apdu.Command) -> bytes:
        wants_fcp = command.p2 & 0x0C != 0x0C
        if command.p1 == 0x04:
            if command.data != AID:
                return apdu.response(apdu.FILE_NOT_FOUND)
            self._current = None
            info = bytes([0x00, 0x00, 0x00, *VERSION])
            fcp = tlv.encode(0x62, tlv.encode(0x82, b"\x38") + tlv.encode(0x85, info))
            return apdu.response(apdu.OK, fcp if wants_fcp else b"")
        if command.p1 in (0x00, 0x02, 0x08) and len(command.data) == 2:
            fid = int.from_bytes(command.data, "big")
            if fid not in self.memory.files:
                return apdu.response(apdu.FILE_NOT_FOUND)
            self._current = fid
            return apdu.response(apdu.OK, self._fcp(fid) if wants_fcp else b"")
        return apdu.response(apdu.WRONG_P1P2)

    def _fcp(self, fid: int) -> bytes:
        size = len(self.memory.files[fid])
        return tlv.encode(
            0x62,
            tlv.encode(0x80, size.to_bytes(2, "big"))
            + tlv.encode(0x82, b"\x01")
            + tlv.encode(0x83, fid.to_bytes(2, "big")),
        )

    def _target(self, p1p2: int) -> int | None:
        """The EF a file command names: P1P2, or the selected EF when it is 0000."""
        return p1p2 or self._current

    # -- PINs

    def _verify(self, command: apdu.Command) -> bytes:
        pin = self.memory.pins.get(command.p2)
        if pin is None:
            return apdu.response(apdu.REFERENCE_NOT_FOUND)
        if pin.tries_left == 0:
            return apdu.response(apdu.AUTH_BLOCKED)
        if not command.data:
            if command.p2 in self._verified:
                return apdu.response(apdu.OK)
            return apdu.response(apdu.tries_left(pin.tries_left))
        return self._check(command.p2, command.data)

    def _check(self, reference: int, offered: bytes) -> bytes:
        """Compare a PIN, counting the try: OK (counter reset) or 63Cx with the tries left."""
        pin = self.memory.pins[reference]
        if offered == pin.value:
            self._verified.add(reference)
            if pin.tries_left != pin.tries_max:
                pin.tries_left = pin.tries_max
                self._save()
            return apdu.response(apdu.OK)
        self._verified.discard(reference)
        pin.tries_left -= 1
        self._save()
        return apdu.response(apdu.tries_left(pin.tries_left))

    def _change_reference_data(self, command: apdu.Command) -> bytes:
        pin = self.memory.pins.get(command.p2)
        if pin is None:
            return apdu.response(apdu.REFERENCE_NOT_FOUND)
        if pin.tries_left == 0:
            return apdu.response(apdu.AUTH_BLOCKED)
        old, new = command.data[: len(pin.value)], command.data[len(pin.value) :]
        lengths = USER_PIN_LENGTHS if command.p2 == flash.USER_PIN else range(8, 9)
        if len(new) not in lengths:
            return apdu.response(apdu.WRONG_DATA)
        answer = self._check(command.p2, old)
        if answer == apdu.response(apdu.OK):
            pin.value = new
            self._save()
        return answer

    def _reset_retry_counter(self, command: apdu.Command) -> bytes:
        user = self.memory.pins.get(flash.USER_PIN)
        if command.p2 != flash.USER_PIN or user is None:
            return apdu.response(apdu.REFERENCE_NOT_FOUND)
        if command.p1 not in (0x00, 0x01):
            return apdu.response(apdu.WRONG_P1P2)
        so = self.memory.pins[flash.SO_PIN]
        if so.tries_left == 0:
            return apdu.response(apdu.AUTH_BLOCKED)
        new = command.data[8:]
        if (command.p1 == 0x00) != bool(new) or (new and len(new) not in USER_PIN_LENGTHS):
            return apdu.response(apdu.WRONG_DATA)
        answer = self._check(flash.SO_PIN, command.data[:8])
        if answer == apdu.response(apdu.OK):
            self._verified.discard(flash.SO_PIN)
            user.tries_left = user.tries_max
            if new:
                user.value = new
            self._save()
        return answer

    def _initialize(self, command: apdu.Command) -> bytes:
        fields = dict(tlv.decode(command.data))
        code, user_pin = fields.get(0x82), fields.get(0x81)
        if code is None or len(code) != 8 or user_pin is None or len(user_pin) not in USER_PIN_LENGTHS:
            return apdu.response(apdu.WRONG_DATA)
        so = self.memory.pins[flash.SO_PIN]
        if flash.USER_PIN in self.memory.pins:
            # Re-initialising takes the SO PIN of the first initialisation (its "initialization code").
            if so.tries_left == 0:
                return apdu.response(apdu.AUTH_BLOCKED)
            if code != so.value:
                so.tries_left -= 1
                self._save()
                return apdu.response(apdu.NOT_ALLOWED)
        so.value, so.tries_left = code, so.tries_max
        tries = fields.get(0x91, bytes([provisioning.USER_PIN_TRIES]))[0]
        provisioning.initialise(self.memory, user_pin, None, tries)
        self._verified.clear()
        self._current = None
        self._save()
        return apdu.response(apdu.OK)

    # -- files

    def _enumerate(self, command: apdu.Command) -> bytes:
        return apdu.response(apdu.OK, b"".join(fid.to_bytes(2, "big") for fid in sorted(self.memory.files)))

    def _may_read(self, fid: int) -> bool:
        if fid >> 8 == KEY_PREFIX:
            return False
        return fid >> 8 != PROTECTED_DATA_PREFIX or flash.USER_PIN in self._verified

    def _read(self, fid: int | None, offset: int, le: int) -> bytes:
        if fid is None or fid not in self.memory.files:
            return apdu.response(apdu.FILE_NOT_FOUND)
        if not self._may_read(fid):
            return apdu.response(apdu.SECURITY_NOT_SATISFIED)
        self._current = fid
        data = self.memory.files[fid]
        if offset > len(data):
            return apdu.response(apdu.WRONG_OFFSET)
        chunk = data[offset : offset + le]
        return apdu.response(apdu.OK if len(chunk) == le else apdu.END_OF_FILE, chunk)

    def _read_binary(self, command: apdu.Command) -> bytes:
        if command.p1 & 0x80:
            return apdu.response(apdu.WRONG_P1P2)
        return self._read(self._current, command.p1p2, command.le)

    def _read_binary_odd(self, command: apdu.Command) -> bytes:
        offset = tlv.find(command.data, 0x54)
        if offset is None or len(offset) != 2:
            return apdu.response(apdu.WRONG_DATA)
        return self._read(self._target(command.p1p2), int.from_bytes(offset, "big"), command.le)

    def _update_binary_odd(self, command: apdu.Command) -> bytes:
        fid = self._target(command.p1p2)
        offset, data = tlv.find(command.data, 0x54), tlv.find(command.data, 0x53)
        if fid is None:
            return apdu.response(apdu.NOT_ALLOWED)
        if offset is None or len(offset) != 2 or data is None:
            return apdu.response(apdu.WRONG_DATA)
        if fid == provisioning.DEVICE_CERTIFICATE:
            return apdu.response(apdu.NOT_ALLOWED)
        if flash.USER_PIN not in self._verified:
            return apdu.response(apdu.SECURITY_NOT_SATISFIED)
        at = int.from_bytes(offset, "big")
        old = self.memory.files.get(fid)
        existing = old or b""
        if at > len(existing):
            return apdu.response(apdu.WRONG_OFFSET)
        new = data if at == 0 else existing[:at] + data + existing[at + len(data) :]
        growth = len(new) - len(existing) + (0 if old is not None else self.memory.FILE_OVERHEAD)
        if self.memory.used() + growth > self.memory.capacity:
            return apdu.response(apdu.NOT_ENOUGH_MEMORY)
        self.memory.files[fid] = new
        self._current = fid
        self._save()
        return apdu.response(apdu.OK)

    def _delete_file(self, command: apdu.Command) -> bytes:
        if command.p1 != 0x02 or len(command.data) != 2:
            return apdu.response(apdu.WRONG_P1P2)
        fid = int.from_bytes(command.data, "big")
        if fid not in self.memory.files:
            return apdu.response(apdu.FILE_NOT_FOUND)
        if fid == provisioning.DEVICE_CERTIFICATE:
            return apdu.response(apdu.NOT_ALLOWED)
        if flash.USER_PIN not in self._verified:
            return apdu.response(apdu.SECURITY_NOT_SATISFIED)
        del self.memory.files[fid]
        if self._current == fid:
            self._current = None
        self._save()
        return apdu.response(apdu.OK)

    def _get_challenge(self, command: apdu.Command) -> bytes:
        if not 0 < command.le <= MAX_CHALLENGE:
            return apdu.response(apdu.WRONG_LENGTH)
        return apdu.response(apdu.OK, os.urandom(command.le))


#: (CLA's proprietary bit, INS) → handler.
_COMMANDS: dict[tuple[int, int], Handler] = {
    (0x00, 0xA4): SmartCardHsm._select,
    (0x00, 0x20): SmartCardHsm._verify,
    (0x00, 0x24): SmartCardHsm._change_reference_data,
    (0x00, 0x2C): SmartCardHsm._reset_retry_counter,
    (0x80, 0x50): SmartCardHsm._initialize,
    (0x80, 0x58): SmartCardHsm._enumerate,
    (0x00, 0xB0): SmartCardHsm._read_binary,
    (0x00, 0xB1): SmartCardHsm._read_binary_odd,
    (0x00, 0xD7): SmartCardHsm._update_binary_odd,
    (0x00, 0xE4): SmartCardHsm._delete_file,
    (0x00, 0x84): SmartCardHsm._get_challenge,
}
