"""Thin PKCS#11 I/O on one token: every call of the process goes through one lock.

This is the only module that imports pkcs11 (and the only caller of rawcalls).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pkcs11
from pkcs11 import exceptions as p11

from hsm_agent import errors, modules

from . import rawcalls

#: python-pkcs11 initialises the module without OS locking and releases the GIL during calls;
#: concurrent calls were seen to crash SoftHSM2 and corrupt its token, so every call takes this lock.
PKCS11_LOCK = threading.Lock()

Handle = Any
"""An object on the token (pkcs11.Object), kept opaque outside this module."""

#: Observer of every PKCS#11 call: (operation, result, seconds).
Observer = Callable[[str, str, float], None]

_GONE = (
    p11.GeneralError,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.SlotIDInvalid,
    p11.NoSuchToken,
    p11.FunctionFailed,
)


class StaleHandle(Exception):
    """A held handle no longer names an object (destroyed elsewhere, or the token went away)."""


@dataclasses.dataclass(frozen=True)
class Census:
    """Every object on the token, and the raw handles of those that hold nothing (see rawcalls)."""

    total: int
    debris: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    label: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    pin_warnings: tuple[str, ...] = ()
    """What the token said of its user PIN when it was found, before the login: count-low (a wrong PIN was
    given since the last good one), final-try, locked; empty when it said nothing."""


@dataclasses.dataclass(frozen=True)
class ForeignObject:
    """A data object another application wrote (another tool's, or an older layout's), read in full."""

    label: str
    value: bytes
    object_id: bytes
    """CKA_OBJECT_ID, empty when unset."""
    handle: Handle


_PIN_WARNINGS = (
    (pkcs11.TokenFlag.USER_PIN_COUNT_LOW, "count-low"),
    (pkcs11.TokenFlag.USER_PIN_FINAL_TRY, "final-try"),
    (pkcs11.TokenFlag.USER_PIN_LOCKED, "locked"),
)


def translate(error: p11.PKCS11Error) -> Exception:
    """The agent error (or StaleHandle) for a PKCS#11 failure; the one place these are mapped."""
    if isinstance(error, p11.ObjectHandleInvalid):
        return StaleHandle(type(error).__name__)
    if isinstance(error, p11.PinIncorrect):
        return errors.WrongPin("the token rejected the PIN")
    if isinstance(error, p11.PinLocked | p11.PinExpired | p11.UserPinNotInitialized):
        return errors.NotLoggedIn(f"cannot log in: {type(error).__name__}")
    if isinstance(error, p11.UserNotLoggedIn):
        return errors.NotLoggedIn("the session is not logged in")
    if isinstance(error, p11.DeviceMemory):
        return errors.TokenFull("the token has no room for more objects")
    if isinstance(error, _GONE):
        return errors.DeviceUnavailable(f"the token is not answering ({type(error).__name__})")
    return errors.AgentError(f"PKCS#11 call failed: {type(error).__name__}")


class Token:
    """One logged-in read-write session on one token, with every call locked, timed and observed."""

    def __init__(
        self,
        library_path: str,
        token_label: str | None,
        slot_id: int | None,
        observe: Observer,
        serial: str | None = None,
    ) -> None:
        self._library_path = library_path
        self._token_label = token_label
        self._slot_id = slot_id
        self._serial = serial
        self._observe = observe
        self._lib: Any = None
        self._token: Any = None
        self._session: Any = None
        self._objects: set[int] | None = None
        """Raw handles of every object on the token: the last census's, then this session's own creates and
        destroys; None while unknown."""

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        result = "ok"
        with PKCS11_LOCK:
            try:
                yield
            except p11.PKCS11Error as error:
                result = type(error).__name__
                raise translate(error) from error
            except rawcalls.CallFailed as error:
                result = "CallFailed"
                raise errors.AgentError(f"PKCS#11 call failed: {error}") from error
            except Exception as error:
                result = type(error).__name__
                raise
            finally:
                self._observe(operation, result, time.perf_counter() - started)

    def _find_token(self) -> Any:
        if self._slot_id is not None:
            for slot in self._lib.get_slots(token_present=True):
                if slot.slot_id == self._slot_id:
                    return slot.get_token()
            raise errors.DeviceUnavailable(f"no token in slot {self._slot_id}")
        if self._token_label is None and self._serial:
            # Several devices on one node (or one module): without a label, the serial picks the token.
            for candidate in self._lib.get_tokens():
                if candidate.serial.decode(errors="replace").strip() == self._serial:
                    return candidate
            raise errors.DeviceUnavailable(f"no token with serial {self._serial!r}")
        if self._token_label is None:
            # Initialised tokens only: SoftHSM2 always shows an empty one in a free slot.
            present = [
                token
                for token in self._lib.get_tokens()
                if token.flags & pkcs11.constants.TokenFlag.TOKEN_INITIALIZED
            ]
            if len(present) != 1:
                raise errors.DeviceUnavailable(
                    f"{len(present)} initialised tokens present where one was expected: name it with a label"
                    " or slot"
                )
            return present[0]
        try:
            return self._lib.get_token(token_label=self._token_label)
        except p11.NoSuchToken as error:
            raise errors.DeviceUnavailable(f"no token labelled {self._token_label!r}") from error

    def connect(self, pin: str) -> TokenInfo:
        """(Re)initialise the library, find the token and log in; the previous session is dropped."""
        with self._call("login"):
            self._session = None
            self._objects = None
            if self._lib is None:
                try:
                    self._lib = pkcs11.lib(self._library_path)
                except p11.PKCS11Error as error:
                    # python-pkcs11 reports a failed dlopen (the loader's words, no secret) as a bare
                    # PKCS11Error; every other call's failure has a subclass.
                    raise errors.ModuleUnavailable(
                        f"cannot load the PKCS#11 module {self._library_path}: {error}"
                    ) from error
            # After a device is removed the library fails even for healthy tokens until reinitialised,
            # and a token created by another process stays invisible until then.
            self._lib.reinitialize()
            self._token = self._find_token()
            self._session = self._token.open(rw=True, user_pin=pin)
            token = self._token
            return TokenInfo(
                label=token.label,
                manufacturer=token.manufacturer_id,
                model=token.model,
                serial=token.serial.decode(errors="replace"),
                firmware="{}.{}".format(*token.firmware_version),
                pin_warnings=tuple(name for flag, name in _PIN_WARNINGS if token.flags & flag),
            )

    def close(self) -> None:
        """Log out and finalise the library (best effort: the token may already be gone)."""
        with PKCS11_LOCK:
            session, self._session = self._session, None
            try:
                if session is not None:
                    session.close()
            except p11.PKCS11Error:
                pass
            try:
                if self._lib is not None:
                    self._lib.finalize()
            except p11.PKCS11Error:
                pass

    def probe(self) -> None:
        """Raise DeviceUnavailable unless the token still answers."""
        with self._call("probe"):
            if self._session is None:
                raise errors.DeviceUnavailable("not connected")
            self._find_token()

    def _live(self) -> Any:
        if self._session is None:
            raise errors.DeviceUnavailable("not connected")
        return self._session

    def find(self, application: str, label: str | None = None) -> list[Handle]:
        """Every data object of application (with exactly label, when given); no result cap."""
        template: dict[pkcs11.Attribute, Any] = {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
            pkcs11.Attribute.APPLICATION: application,
        }
        if label is not None:
            template[pkcs11.Attribute.LABEL] = label
        with self._call("find"):
            return list(self._live().get_objects(template, batch_size=1024))

    def census(self, known: set[int]) -> Census:
        """Count every object on the token, checking those whose raw handle is not known for debris."""
        with self._call("census"):
            session = self._live().handle
            handles = rawcalls.all_objects(self._library_path, session)
            debris = tuple(
                handle
                for handle in handles
                if handle not in known and rawcalls.is_debris(self._library_path, session, handle)
            )
            self._objects = set(handles)
            return Census(len(handles), debris)

    def unchanged(self) -> bool:
        """True when the token holds exactly the objects the last census and this session's own creates
        and destroys account for: nobody else has added or removed one since (one call, no object read)."""
        with self._call("census"):
            handles = rawcalls.all_objects(self._library_path, self._live().handle)
        return self._objects is not None and set(handles) == self._objects

    def destroy_debris(self, raw_handle: int) -> None:
        with self._call("destroy"):
            rawcalls.destroy(self._library_path, self._live().handle, raw_handle)
            if self._objects is not None:
                self._objects.discard(raw_handle)

    def memory(self) -> rawcalls.Memory:
        """The token's private memory as it reports it now."""
        with self._call("token_info"):
            if self._token is None:
                raise errors.DeviceUnavailable("not connected")
            return rawcalls.memory(self._library_path, self._token.slot.slot_id)

    @staticmethod
    def raw_handle(handle: Handle) -> int:
        return int(handle.handle)

    def read_label(self, handle: Handle) -> str:
        with self._call("read_label"):
            return str(handle[pkcs11.Attribute.LABEL])

    def read_value(self, handle: Handle) -> bytes:
        with self._call("read_value"):
            return bytes(handle[pkcs11.Attribute.VALUE])

    def read_label_and_value(self, handle: Handle) -> tuple[str, bytes]:
        with self._call("read_object"):
            attrs = handle.get_attributes([pkcs11.Attribute.LABEL, pkcs11.Attribute.VALUE])
            return str(attrs[pkcs11.Attribute.LABEL]), bytes(attrs[pkcs11.Attribute.VALUE])

    def read_foreign(self, handle: Handle) -> ForeignObject:
        """Label, value and object id of another application's data object, in one call."""
        wanted = [pkcs11.Attribute.LABEL, pkcs11.Attribute.VALUE, pkcs11.Attribute.OBJECT_ID]
        with self._call("read_object"):
            attrs = handle.get_attributes(wanted)
            return ForeignObject(
                label=str(attrs[pkcs11.Attribute.LABEL]),
                value=bytes(attrs[pkcs11.Attribute.VALUE]),
                object_id=bytes(attrs[pkcs11.Attribute.OBJECT_ID] or b""),
                handle=handle,
            )

    def create(self, application: str, label: str, value: bytes) -> Handle:
        """Create a private token data object."""
        if modules.is_opensc(self._library_path):
            # OpenSC 0.23 copies CKA_APPLICATION up to a NUL, not its length: without one, the bytes after it
            # in memory land on the card, and the object is never found by its application again.
            application += "\0"
        attrs = {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.PRIVATE: True,
            pkcs11.Attribute.MODIFIABLE: False,
            pkcs11.Attribute.APPLICATION: application,
            pkcs11.Attribute.LABEL: label,
            pkcs11.Attribute.VALUE: value,
        }
        with self._call("create"):
            created = self._live().create_object(attrs)
            if self._objects is not None:
                self._objects.add(self.raw_handle(created))
            return created

    def destroy(self, handle: Handle) -> None:
        with self._call("destroy"):
            handle.destroy()
            if self._objects is not None:
                self._objects.discard(self.raw_handle(handle))

    def generate_random(self, length: int) -> bytes:
        """``length`` bytes from the token's own generator; Unsupported when it has none (no fallback)."""
        with self._call("generate_random"):
            session = self._live()
            if not self._token.flags & pkcs11.TokenFlag.RNG:
                raise errors.Unsupported("the token has no random number generator")
            try:
                random: bytes = session.generate_random(length * 8)
            except p11.RandomNoRNG as error:
                raise errors.Unsupported("the token has no random number generator") from error
            return random

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        with self._call("set_pin"):
            self._live().set_pin(old_pin, new_pin)
