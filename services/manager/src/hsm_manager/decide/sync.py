"""The sync decision: compare what the devices hold with what the Secret carries, and say what to do."""

from __future__ import annotations

import dataclasses
import enum

from hsm_common import constants, models

from . import conflict, model


class Action(enum.StrEnum):
    NOTHING = "nothing"
    """The Secret already matches (or must be left as it is)."""
    WRITE = "write"
    """Read the secret from `source` and create or replace the Secret."""
    DELETE = "delete"
    """Delete the Secret (tombstone on the HSM, policy Delete)."""


class Reason(enum.StrEnum):
    """Ready-condition reasons, one per outcome; the single place outcomes get their names."""

    SYNCED = "SecretSynced"
    DELETED = "SecretDeleted"
    NOT_FOUND = "SecretNotFoundOnHSM"
    DEVICE_UNAVAILABLE = "DeviceUnavailable"
    CONFLICT = "SecretNotManaged"
    INVALID = "InvalidSpec"
    ERROR = "SecretSyncedError"
    PAUSED = "AutoSyncDisabled"


@dataclasses.dataclass(frozen=True)
class Observation:
    """What one device holds for the path, or why its agent could not be asked."""

    agent: str
    state: model.PathState = model.ABSENT
    """ABSENT when the path does not exist on the device."""
    error: str | None = None
    """Set when the agent could not be asked; state is then meaningless."""


@dataclasses.dataclass(frozen=True)
class SecretState:
    """The target Secret as found in the cluster (its data reduced to a checksum by the caller)."""

    exists: bool
    managed: bool = False
    """Carries our managed-by label and an ownerReference to this HSMSecret."""
    secret_type: str = ""
    data_checksum: str = ""
    hsm_version: str = ""
    """The hsm-version annotation."""


@dataclasses.dataclass(frozen=True)
class Decision:
    action: Action
    sync_status: models.SyncStatus
    reason: Reason
    message: str
    source: str | None = None
    """Agent to read from (WRITE only)."""
    version: int | None = None
    checksum: str | None = None
    """The winning device's raw checksum; callers show only its MAC."""
    divergent: tuple[str, ...] = ()
    """Agents whose answer differs from the winner's."""


def _unmanaged(name: str) -> Decision:
    return Decision(
        Action.NOTHING,
        models.SyncStatus.ERROR,
        Reason.CONFLICT,
        f"Secret {name} exists and is not managed by this HSMSecret; it is left untouched",
    )


def decide(
    observations: list[Observation],
    secret: SecretState,
    secret_type: str,
    policy: models.DeletionPolicy,
    secret_name: str,
) -> Decision:
    """What to do with the Secret, given every device's answer for the path.

    The newest copy among the devices that answered wins, in the one conflict order (decide.conflict)
    that the API and the mirror repair use too. Nothing is ever deleted or overwritten on an error or
    when no device answered: the Secret is kept.
    A Secret that exists without being ours is never touched.
    """
    answered = [o for o in observations if o.error is None]
    if not answered:
        detail = "; ".join(f"{o.agent}: {o.error}" for o in observations) or "no agent is running"
        return Decision(
            Action.NOTHING,
            models.SyncStatus.ERROR,
            Reason.DEVICE_UNAVAILABLE,
            f"no device answered ({detail}); the Secret is kept",
        )
    found = conflict.newest({o.agent: o.state for o in answered})
    if found is None:
        return Decision(
            Action.NOTHING,
            models.SyncStatus.ERROR,
            Reason.NOT_FOUND,
            "the path does not exist on any device; an existing Secret is kept",
        )
    source, winner = found
    divergent = tuple(o.agent for o in answered if not o.state.same_as(winner))
    if winner.deleted:
        message = f"deleted on the HSM at version {winner.version}"
        remove = policy == models.DeletionPolicy.DELETE and secret.exists and secret.managed
        if secret.exists and not secret.managed and policy == models.DeletionPolicy.DELETE:
            message += f"; Secret {secret_name} is not ours and is kept"
        elif secret.exists and policy == models.DeletionPolicy.RETAIN:
            message += "; the Secret is retained (deletionPolicy Retain)"
        return Decision(
            Action.DELETE if remove else Action.NOTHING,
            models.SyncStatus.DELETED,
            Reason.DELETED,
            message,
            version=winner.version,
            divergent=divergent,
        )
    if secret.exists and not secret.managed:
        return _unmanaged(secret_name)
    in_sync = (
        secret.exists
        and secret.data_checksum == winner.checksum
        and secret.hsm_version == str(winner.version)
        and secret.secret_type == secret_type
    )
    return Decision(
        Action.NOTHING if in_sync else Action.WRITE,
        models.SyncStatus.IN_SYNC,
        Reason.SYNCED,
        f"Secret {secret_name} holds version {winner.version}",
        source=None if in_sync else source,
        version=winner.version,
        checksum=winner.checksum,
        divergent=divergent,
    )


def needs_type_change(secret: SecretState, secret_type: str) -> bool:
    """A Secret's type is immutable: a different one means delete and create."""
    return secret.exists and secret.secret_type != secret_type


def secret_annotations(version: int, data_mac: str) -> dict[str, str]:
    """The annotations a synced Secret carries: the HSM version and the keyed MAC of its data."""
    return {constants.ANNOTATION_HSM_VERSION: str(version), constants.ANNOTATION_DATA_MAC: data_mac}
