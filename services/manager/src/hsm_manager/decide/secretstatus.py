"""The HSMSecret status after a sync decision, changed only where something really changed."""

from __future__ import annotations

import datetime

from hsm_common import models

from . import conditions, sync


def build(
    previous: models.HSMSecretStatus,
    decision: sync.Decision,
    *,
    hsm_mac: str | None,
    secret_mac: str | None,
    secret_ref: models.SecretRef,
    generation: int | None,
    synced: bool,
    now: datetime.datetime,
) -> models.HSMSecretStatus:
    """The new status: MACs only (never raw checksums), lastSyncTime moved only when the Secret changed.

    synced says the Secret was written or deleted in this pass, or first confirmed in sync; an idle
    pass that changes nothing returns a status equal to previous, so the caller can skip the write.
    """
    ok = decision.sync_status in (models.SyncStatus.IN_SYNC, models.SyncStatus.DELETED)
    message = decision.message
    if decision.divergent:
        message += f"; devices disagree: {', '.join(decision.divergent)} differ from the newest version"
    ready = conditions.ready(ok, decision.reason.value, message, generation)
    first_in_sync = ok and previous.sync_status != decision.sync_status
    error = None if ok else decision.message
    return models.HSMSecretStatus(
        sync_status=decision.sync_status,
        hsm_version=decision.version if decision.version is not None else previous.hsm_version,
        hsm_checksum=hsm_mac if hsm_mac is not None else previous.hsm_checksum,
        secret_checksum=secret_mac if secret_mac is not None else previous.secret_checksum,
        last_sync_time=now if synced or first_in_sync else previous.last_sync_time,
        last_error=error,
        observed_generation=generation,
        secret_ref=secret_ref,
        last_rollout_restart=previous.last_rollout_restart,
        rollout_restart_pending=previous.rollout_restart_pending,
        conditions=conditions.set_condition(previous.conditions, ready, now),
    )


def invalid(
    previous: models.HSMSecretStatus, message: str, generation: int | None, now: datetime.datetime
) -> models.HSMSecretStatus:
    """The status of an HSMSecret whose spec cannot be synced at all (a path outside its namespace)."""
    ready = conditions.ready(False, sync.Reason.INVALID.value, message, generation)
    return previous.model_copy(
        update={
            "sync_status": models.SyncStatus.ERROR,
            "last_error": message,
            "observed_generation": generation,
            "conditions": conditions.set_condition(previous.conditions, ready, now),
        }
    )
