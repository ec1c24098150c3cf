"""The few PKCS#11 calls python-pkcs11 cannot make for us, made with ctypes on the module it loaded.

- C_GetTokenInfo's memory fields, which python-pkcs11 does not keep;
- a census of every object by raw handle: python-pkcs11 turns each found handle into a typed object and
  fails on objects without a class, which an interrupted C_CreateObject leaves on SoftHSM2.

Only token.py calls these, holding its lock: the module is not thread-safe here.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools

_ULONG = ctypes.c_ulong
#: CK_UNAVAILABLE_INFORMATION: the token does not say.
UNAVAILABLE = _ULONG(-1).value
_CKA_CLASS = 0x0
_CKA_LABEL = 0x3
_CKA_APPLICATION = 0x10
_CKA_VALUE = 0x11
_CKO_DATA = 0x0
_BATCH = 256


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _TokenInfo(ctypes.Structure):
    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturer_id", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serial_number", ctypes.c_char * 16),
        ("flags", _ULONG),
        ("max_session_count", _ULONG),
        ("session_count", _ULONG),
        ("max_rw_session_count", _ULONG),
        ("rw_session_count", _ULONG),
        ("max_pin_len", _ULONG),
        ("min_pin_len", _ULONG),
        ("total_public_memory", _ULONG),
        ("free_public_memory", _ULONG),
        ("total_private_memory", _ULONG),
        ("free_private_memory", _ULONG),
        ("hardware_version", _Version),
        ("firmware_version", _Version),
        ("utc_time", ctypes.c_char * 16),
    ]


class _Attribute(ctypes.Structure):
    _fields_ = [("type", _ULONG), ("value", ctypes.c_void_p), ("length", _ULONG)]


class CallFailed(Exception):
    """A raw call returned an error code (the code in hex is the message)."""


@dataclasses.dataclass(frozen=True)
class Memory:
    """Private memory of the token in bytes, as CK_TOKEN_INFO reports it (None: not reported)."""

    total: int | None
    free: int | None


def memory_of(total: int, free: int) -> Memory:
    """Memory from CK_TOKEN_INFO's private memory fields (a total of 0 means "effectively infinite")."""

    def known(value: int) -> int | None:
        return None if value == UNAVAILABLE or total in (0, UNAVAILABLE) else value

    return Memory(known(total), known(free))


@functools.cache
def _module(library_path: str) -> ctypes.CDLL:
    # dlopen of a loaded library returns the same instance: python-pkcs11 has initialised it already.
    module = ctypes.CDLL(library_path)
    for name in ("C_GetTokenInfo", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal"):
        getattr(module, name).restype = _ULONG
    module.C_GetAttributeValue.restype = _ULONG
    module.C_DestroyObject.restype = _ULONG
    return module


def _check(result: int, call: str) -> None:
    if result != 0:
        raise CallFailed(f"{call} failed (0x{result:x})")


def memory(library_path: str, slot_id: int) -> Memory:
    info = _TokenInfo()
    _check(_module(library_path).C_GetTokenInfo(_ULONG(slot_id), ctypes.byref(info)), "C_GetTokenInfo")
    return memory_of(info.total_private_memory, info.free_private_memory)


def all_objects(library_path: str, session: int) -> list[int]:
    """The handle of every object the session sees."""
    module = _module(library_path)
    _check(module.C_FindObjectsInit(_ULONG(session), None, _ULONG(0)), "C_FindObjectsInit")
    handles: list[int] = []
    batch = (_ULONG * _BATCH)()
    count = _ULONG(0)
    try:
        while True:
            _check(
                module.C_FindObjects(_ULONG(session), batch, _ULONG(_BATCH), ctypes.byref(count)),
                "C_FindObjects",
            )
            handles.extend(batch[: count.value])
            if count.value < _BATCH:
                return handles
    finally:
        module.C_FindObjectsFinal(_ULONG(session))


def is_debris(library_path: str, session: int, handle: int) -> bool:
    """True for an object that holds nothing: no class, or a data object without label, application and
    value. An interrupted C_CreateObject leaves such objects on SoftHSM2; destroying them loses nothing."""
    module = _module(library_path)
    klass = _ULONG(0)
    template = (_Attribute * 1)(_Attribute(_CKA_CLASS, ctypes.cast(ctypes.byref(klass), ctypes.c_void_p), 8))
    if module.C_GetAttributeValue(_ULONG(session), _ULONG(handle), template, _ULONG(1)) != 0:
        return True
    if klass.value != _CKO_DATA:
        return False
    lengths = (_Attribute * 3)(
        _Attribute(_CKA_LABEL, None, 0),
        _Attribute(_CKA_APPLICATION, None, 0),
        _Attribute(_CKA_VALUE, None, 0),
    )
    module.C_GetAttributeValue(_ULONG(session), _ULONG(handle), lengths, _ULONG(3))
    return all(item.length in (0, UNAVAILABLE) for item in lengths)


def destroy(library_path: str, session: int, handle: int) -> None:
    _check(_module(library_path).C_DestroyObject(_ULONG(session), _ULONG(handle)), "C_DestroyObject")
