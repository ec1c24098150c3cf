"""The object budget of a token: defaults by PKCS#11 module and the rule every write passes. Pure.

OpenSC's PKCS#11 layer exposes at most 128 objects per token, keys and certificates included; creating
one more fails deep inside OpenSC. The agent counts everything the token holds and refuses, before touching
the token, a write that would pass the budget.
"""

from __future__ import annotations

import dataclasses

from hsm_agent import errors, modules

#: One object is always kept free, so that any single-object secret can still be overwritten (its new
#: generation exists beside the old one until the old is destroyed) and the ledger rewritten.
RESERVE = 1
#: Objects held back for the tombstone ledger while the token has none: the first delete creates it, and a
#: secret deleted on a full token must leave room to create a secret again.
LEDGER_RESERVE = 1

OPENSC_MAX_OBJECTS = 120
"""Under OpenSC's 128, leaving room for keys and certificates added with other tools."""
OPENSC_MAX_OBJECT_SIZE = 4096
"""Small enough for the flash of a Pico HSM; OpenSC writes it in blocks of one APDU each."""
DEFAULT_MAX_OBJECTS = 100_000
"""SoftHSM2 and other modules store many objects."""
DEFAULT_MAX_OBJECT_SIZE = 65536


@dataclasses.dataclass(frozen=True)
class Budget:
    max_objects: int
    max_object_size: int


@dataclasses.dataclass(frozen=True)
class Capacity:
    """How full a token is (what GetInfo, the metrics and the HSMPool status show)."""

    max_objects: int
    used_objects: int
    free_objects: int
    own_objects: int
    own_bytes: int
    total_memory: int | None
    free_memory: int | None


def for_module(library_path: str, max_objects: int | None, max_object_size: int | None) -> Budget:
    """The budget of a token behind library_path: the given limits, else the module's defaults."""
    opensc = modules.is_opensc(library_path)
    return Budget(
        max_objects=max_objects or (OPENSC_MAX_OBJECTS if opensc else DEFAULT_MAX_OBJECTS),
        max_object_size=max_object_size or (OPENSC_MAX_OBJECT_SIZE if opensc else DEFAULT_MAX_OBJECT_SIZE),
    )


def free(budget: Budget, used: int, held: int) -> int:
    """Objects a new secret may still take, with held objects set aside (the ledger's, while it is absent)."""
    return max(0, budget.max_objects - RESERVE - held - used)


def check(budget: Budget, used: int, held: int, create: int, destroy: int, what: str) -> None:
    """Raise TokenFull unless creating create objects (then destroying destroy) stays within budget.

    A write that grows the token must leave the reserve and the held objects free; one that does not (an
    overwrite, a delete) only needs room for its new objects while the old ones still exist.
    """
    peak = used + create
    after = peak - destroy
    grows = after > used
    if peak <= budget.max_objects and not (grows and after + held > budget.max_objects - RESERVE):
        return
    raise errors.TokenFull(
        f"{what} needs {create} new object(s) and the token is at its budget: {used} of "
        f"{budget.max_objects} objects used, {free(budget, used, held)} free for new secrets"
        + (f", {destroy} to be freed after the write" if destroy else "")
    )
