"""One audit line per write: who, which verb, which path and keys, the result; never a value or PIN."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hsm_manager.mirroring import writes

from . import auth

log = logging.getLogger("hsm_manager.api.audit")


def record(
    user: auth.User | None,
    action: str,
    target: str,
    status: int,
    keys: Iterable[str] = (),
    results: Iterable[writes.DeviceResult] = (),
) -> None:
    """Write the audit line of one write request (successful or not)."""
    log.info(
        "audit",
        extra={
            "user": user.username if user else "",
            "groups": list(user.groups) if user else [],
            "action": action,
            "target": target,
            "keys": sorted(keys),
            "status": status,
            "devices": {
                r.member: ("ok" if r.ok else (r.failure.value if r.failure else "error")) for r in results
            },
        },
    )
