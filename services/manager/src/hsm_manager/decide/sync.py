"""The sync decision: compare what the devices hold with what the Secret carries, and say what to do."""

from __future__ import annotations

import dataclasses
import enum
import hmac
from collections.abc import Mapping

from hsm_common import checksum, constants, models

from . import conflict, creation, model, shape


class Action(enum.StrEnum):
    NOTHING = "nothing"
    """The Secret already matches (or must be left as it is)."""
    WRITE = "write"
    """Read the secret from `source` and create or replace the Secret."""
    DELETE = "delete"
    """Delete the Secret (tombstone on the HSM, policy Delete); under creationPolicy Merge, take the keys
    written out of it."""


class Reason(enum.StrEnum):
    """Ready-condition reasons, one per outcome; the single place outcomes get their names."""

    SYNCED = "SecretSynced"
    DELETED = "SecretDeleted"
    NOT_FOUND = "SecretNotFoundOnHSM"
    DEVICE_UNAVAILABLE = "DeviceUnavailable"
    CONFLICT = "SecretNotManaged"
    INVALID = "InvalidSpec"
    KEY_NOT_FOUND = "KeyNotFoundOnHSM"
    TEMPLATE_FAILED = "TemplateFailed"
    ERROR = "SecretSyncedError"
    PAUSED = "AutoSyncDisabled"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a reason, not a password
    """creationPolicy Merge and no Secret to merge into."""


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
    """This HSMSecret may write it (creation.claim)."""
    secret_type: str = ""
    data_checksum: str = ""
    """Of the keys its MAC covers (creation.ours)."""
    hsm_version: str = ""
    """The hsm-version annotation."""
    immutable: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    owner_referenced: bool = True
    """Carries an ownerReference to this HSMSecret."""


@dataclasses.dataclass(frozen=True)
class Wanted:
    """The Secret a spec asks for, apart from its data (known only once the HSM secret is read)."""

    secret_type: str
    immutable: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The spec's labels, besides the operator's own."""
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    shape: str = ""
    """shape.digest of the spec; "" when the Secret is a plain copy of the HSM secret's keys."""
    creation: models.CreationPolicy = models.CreationPolicy.OWNER

    @classmethod
    def of(cls, spec: models.HSMSecretSpec) -> Wanted:
        return cls(
            secret_type=spec.effective_secret_type(),
            immutable=spec.target.immutable,
            labels=dict(spec.target.labels),
            annotations=dict(spec.target.annotations),
            shape=shape.digest(spec),
            creation=spec.creation_policy,
        )

    @property
    def merge(self) -> bool:
        return self.creation == models.CreationPolicy.MERGE


def shape_mac(mac_key: bytes, shape_digest: str, hsm_checksum: str, data_checksum: str) -> str:
    """The keyed MAC a shaped Secret carries: it binds the HSM copy it was made from, the spec's shape and
    the data written, so a changed HSM secret, a changed spec and an edited Secret each show."""
    return checksum.mac_of_checksum(mac_key, f"{shape_digest}\n{hsm_checksum}\n{data_checksum}")


def _holds(secret: SecretState, wanted: Wanted, winner: model.PathState, mac_key: bytes) -> bool:
    """The Secret already is what the spec makes of the winning copy."""
    if wanted.shape:
        made = secret.annotations.get(constants.ANNOTATION_SHAPE_MAC, "")
        data_ok = hmac.compare_digest(
            made, shape_mac(mac_key, wanted.shape, winner.checksum, secret.data_checksum)
        )
    else:
        data_ok = secret.data_checksum == winner.checksum and (
            constants.ANNOTATION_SHAPE_MAC not in secret.annotations
        )
    return (
        data_ok
        and secret.owner_referenced == (wanted.creation == models.CreationPolicy.OWNER)
        # Merged keys are recorded in the Secret; a whole Secret records none.
        and (constants.ANNOTATION_OWNED_KEYS in secret.annotations) == wanted.merge
        and secret.hsm_version == str(winner.version)
        and secret.secret_type == wanted.secret_type
        and secret.immutable == wanted.immutable
        and all(secret.labels.get(k) == v for k, v in wanted.labels.items())
        and all(secret.annotations.get(k) == v for k, v in wanted.annotations.items())
    )


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
    wanted: Wanted,
    policy: models.DeletionPolicy,
    secret_name: str,
    mac_key: bytes,
) -> Decision:
    """What to do with the Secret, given every device's answer for the path.

    The newest copy among the devices that answered wins, in the one conflict order (decide.conflict)
    that the API and the mirror repair use too. Nothing is ever deleted or overwritten on an error or
    when no device answered: the Secret is kept.
    A Secret that exists without being ours is never touched. mac_key is the installation's MAC key, which
    checks a shaped Secret's shape MAC.
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
        if wanted.merge:
            # Only keys a merge recorded as its own are taken out; the Secret itself is never deleted.
            remove = remove and constants.ANNOTATION_OWNED_KEYS in secret.annotations
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
    if wanted.merge:
        refused = _merge_refusal(secret, wanted, secret_name)
        if refused is not None:
            return dataclasses.replace(refused, version=winner.version, divergent=divergent)
    in_sync = secret.exists and _holds(secret, wanted, winner, mac_key)
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


def _merge_refusal(secret: SecretState, wanted: Wanted, secret_name: str) -> Decision | None:
    """Why Merge cannot write into the Secret (None: it can); the Secret is left as it is."""
    if not secret.exists:
        return Decision(
            Action.NOTHING,
            models.SyncStatus.ERROR,
            Reason.SECRET_NOT_FOUND,
            f"Secret {secret_name} does not exist: creationPolicy Merge writes only into an existing Secret "
            "(looked for again every syncInterval)",
        )
    if secret.immutable:
        message = f"Secret {secret_name} is immutable: creationPolicy Merge cannot write into it"
    else:
        message = creation.type_refusal(secret_name, secret.secret_type, wanted.secret_type) or ""
    if not message:
        return None
    return Decision(Action.NOTHING, models.SyncStatus.ERROR, Reason.INVALID, message)


def recreate_reason(secret: SecretState, wanted: Wanted, data_checksum: str) -> str | None:
    """Why the existing Secret cannot be replaced in place and must be deleted and created (None: it can).

    Kubernetes keeps a Secret's type for its lifetime, and an immutable Secret's data and immutability.
    """
    if not secret.exists:
        return None
    if secret.secret_type != wanted.secret_type:
        return f"its type changes from {secret.secret_type} to {wanted.secret_type}"
    if secret.immutable and not wanted.immutable:
        return "it is immutable and target.immutable is now false"
    if secret.immutable and secret.data_checksum != data_checksum:
        return "it is immutable and its data changes"
    return None


def secret_metadata(
    wanted: Wanted, owner: str, version: int, data_mac: str, made_mac: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations of a synced Secret: the spec's, then the operator's own over them.

    The operator's: managed-by and the HSMSecret's name, the HSM version, the keyed MAC of the data, and for
    a shaped Secret its shape MAC (made_mac).
    """
    labels = {
        **wanted.labels,
        constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE,
        constants.LABEL_SECRET: owner,
    }
    annotations = {
        **wanted.annotations,
        constants.ANNOTATION_HSM_VERSION: str(version),
        constants.ANNOTATION_DATA_MAC: data_mac,
    }
    if made_mac is not None:
        annotations[constants.ANNOTATION_SHAPE_MAC] = made_mac
    return labels, annotations
