"""The HSMSecret's status: the one it holds, what a pass adds to it, and the patch that writes it."""

from __future__ import annotations

from typing import Any

import pydantic

from hsm_common import constants, models
from hsm_manager import kube
from hsm_manager.decide import sources, sync

from . import ledger, secretmanifest


def held(obj: kube.Obj) -> models.HSMSecretStatus:
    """The status obj holds (empty when it is not one)."""
    raw = {k: v for k, v in (obj.get("status") or {}).items() if k in _STATUS_FIELDS}
    try:
        return models.HSMSecretStatus.model_validate(raw)
    except pydantic.ValidationError:
        return models.HSMSecretStatus()


_STATUS_FIELDS = {f.alias or n for n, f in models.HSMSecretStatus.model_fields.items()}


def before(
    remembered: ledger.Ledger, key: tuple[str, str], obj: kube.Obj, verify: bool
) -> models.HSMSecretStatus:
    """The status the HSMSecret holds: the last one this process patched, unless the body is fresh
    from the API server (a watched body may predate that patch)."""
    uid = obj["metadata"].get("uid")
    patched = remembered.patched(key)
    if patched is not None and patched[0] == uid and not verify:
        return patched[1]
    return held(obj)


def finish(
    client: kube.Kube,
    remembered: ledger.Ledger,
    obj: kube.Obj,
    previous: models.HSMSecretStatus,
    status: models.HSMSecretStatus,
    warned: bool = False,
) -> None:
    """Count and patch status (when it changed); a turn to Error is a Warning event, unless the pass
    already warned (warned) with the same words."""
    meta = obj["metadata"]
    key = (meta["namespace"], meta["name"])
    remembered.count_status(key, (status.sync_status or models.SyncStatus.PENDING).value)
    if status == previous:
        return
    turned = previous.sync_status != status.sync_status and status.sync_status == models.SyncStatus.ERROR
    if turned and not warned:
        client.event(obj, "SyncFailed", status.last_error or "sync failed", warning=True)
    wire: dict[str, Any] = status.to_wire()
    # Fields the new status leaves out must be cleared explicitly in a merge patch.
    for field in ("lastError", "rolloutRestartPending", "sources", "keyConflicts", "ownedKeys"):
        wire.setdefault(field, None)
    try:
        client.patch_status(constants.KIND_SECRET, meta["namespace"], meta["name"], wire)
    except kube.NotFound:
        return
    remembered.note_patched(key, meta.get("uid"), status)


def spec_errors(error: pydantic.ValidationError) -> str:
    """The spec's faults in a line (the spec holds no secret values; inputs are left out all the same)."""
    faults = []
    for fault in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in ("spec", *fault["loc"]))
        faults.append(f"{where}: {fault['msg'].removeprefix('Value error, ')}")
    return "; ".join(faults)


def with_sources(
    status: models.HSMSecretStatus,
    previous: models.HSMSecretStatus,
    spec: models.HSMSecretSpec,
    picked: list[sources.Picked] | sync.Decision | None,
    made: secretmanifest.Written | None,
) -> models.HSMSecretStatus:
    """status with dataFrom's sources and key conflicts: as written, as found in sync, or as before."""
    if spec.data_from is None:
        return status.model_copy(update={"sources": None, "key_conflicts": None})
    found: list[models.SourceVersion] | None
    if made is not None:
        found, conflicts = list(made.sources), list(made.conflicts) or None
    elif isinstance(picked, list) and status.sync_status == models.SyncStatus.IN_SYNC:
        found, conflicts = sources.versions(picked), previous.key_conflicts
    else:
        found, conflicts = previous.sources, previous.key_conflicts
    return status.model_copy(update={"sources": found, "key_conflicts": conflicts})


def versions_of(paths: list[str], version: int, status: models.HSMSecretStatus) -> dict[str, int]:
    """The version of each path the Secret is in sync with: each source's, or the one path's."""
    if status.sources is not None:
        return {s.path: s.version for s in status.sources}
    return {paths[0]: version}
