"""Pydantic models of the CRDs (the single source of the CRD YAML) and their enums.

Fields use snake_case in Python and camelCase on the wire. Defaults live here, not in the CRD schema:
a schema default would be written into every stored object and GitOps tools would report drift.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

from . import constants, names

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
USB_ID_PATTERN = r"^[0-9a-fA-F]{4}$"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

DnsSubdomain = Annotated[str, pydantic.Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)]
DnsLabel = Annotated[str, pydantic.Field(pattern=DNS_LABEL_PATTERN, max_length=63)]


class Model(pydantic.BaseModel):
    """Base of every wire model: camelCase aliases, unknown fields rejected."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase names, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """A Kubernetes-style status condition."""

    type: str = pydantic.Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = pydantic.Field(default="", max_length=1024)
    message: str = pydantic.Field(default="", max_length=32768)
    last_transition_time: datetime.datetime | None = None
    observed_generation: int | None = pydantic.Field(default=None, ge=0)


# ---------------------------------------------------------------- HSMSecret


class SyncStatus(enum.StrEnum):
    PENDING = "Pending"
    IN_SYNC = "InSync"
    OUT_OF_SYNC = "OutOfSync"
    ERROR = "Error"
    DELETED = "Deleted"


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class CreationPolicy(enum.StrEnum):
    """Who owns the Secret (docs/hsmsecret.md, "Creation policies")."""

    OWNER = "Owner"
    """The operator creates the Secret and owns it: it goes with the HSMSecret."""
    ORPHAN = "Orphan"
    """As Owner, but the Secret has no owner reference and survives the HSMSecret."""
    MERGE = "Merge"
    """The Secret exists and is someone else's: only the HSM's keys are written into it, and taken out again
    when the HSMSecret goes."""


SecretKey = Annotated[str, pydantic.Field(pattern=names.KEY_PATTERN, max_length=253)]
RESERVED_PREFIX = f"{constants.GROUP}/"
"""Labels and annotations under this prefix are the operator's own on every Secret it writes."""
RESERVED_LABELS = frozenset({constants.LABEL_MANAGED_BY})
"""Labels outside the prefix that the operator writes and a target may not set."""


def _not_reserved(kind: str, metadata: dict[str, str], reserved: frozenset[str]) -> dict[str, str]:
    taken = sorted(k for k in metadata if k.startswith(RESERVED_PREFIX) or k in reserved)
    if taken:
        raise ValueError(f"{kind} {', '.join(taken)}: the operator writes these itself")
    return metadata


class KeySelection(Model):
    """One key of the HSM secret, written into the Secret under a name of its own."""

    secret_key: SecretKey
    """The key in the Secret (and in a template's values)."""
    key: SecretKey
    """The key of the HSM secret."""


class TemplateMergePolicy(enum.StrEnum):
    REPLACE = "Replace"
    MERGE = "Merge"


class TemplateSpec(Model):
    """Secret keys computed from the selected keys with sandboxed Jinja2 templates (docs/hsmsecret.md)."""

    data: dict[str, Annotated[str, pydantic.Field(max_length=16384)]] = pydantic.Field(
        default_factory=dict, max_length=64
    )
    """Secret key: its template, which sees values.<key> (text) and bytes.<key> (raw bytes)."""
    merge_policy: TemplateMergePolicy = TemplateMergePolicy.REPLACE
    """Replace: the Secret holds the rendered keys only. Merge: the selected keys too (rendered ones win)."""

    @pydantic.field_validator("data")
    @classmethod
    def _keys_are_secret_keys(cls, data: dict[str, str]) -> dict[str, str]:
        for key in data:
            names.validate_key(key)
        return data


class TargetSpec(Model):
    """How the written Secret looks besides its data."""

    labels: dict[str, str] = pydantic.Field(default_factory=dict, max_length=64)
    """Labels added to the Secret; the operator's own (app.kubernetes.io/managed-by, hsm.j5t.io/*) are
    refused."""
    annotations: dict[str, str] = pydantic.Field(default_factory=dict, max_length=64)
    """Annotations added to the Secret; hsm.j5t.io/* are the operator's own and refused."""
    type: str | None = pydantic.Field(default=None, min_length=1, max_length=253)
    """Kubernetes Secret type; default: secretType. A changed type recreates the Secret."""
    immutable: bool = False
    """Write the Secret immutable; a change of its data or type then recreates it."""
    template: TemplateSpec | None = None

    @pydantic.field_validator("labels")
    @classmethod
    def _labels_are_not_ours(cls, labels: dict[str, str]) -> dict[str, str]:
        return _not_reserved("labels", labels, RESERVED_LABELS)

    @pydantic.field_validator("annotations")
    @classmethod
    def _annotations_are_not_ours(cls, annotations: dict[str, str]) -> dict[str, str]:
        return _not_reserved("annotations", annotations, frozenset())


class RolloutKind(enum.StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"


class RolloutRestartTarget(Model):
    """A workload in the HSMSecret's namespace restarted (as by kubectl rollout restart) when the Secret's
    data changes."""

    kind: RolloutKind
    name: DnsSubdomain


class DataFromSource(Model):
    """One more HSM path of the HSMSecret's namespace whose keys are merged into the Secret."""

    hsm_path: str = pydantic.Field(pattern=names.PATH_PATTERN, max_length=200)
    """Path on the HSM below the namespace."""


class SourceVersion(Model):
    """The version of one source path the Secret was last synced from."""

    path: str
    version: int


class KeyConflict(Model):
    """A key held by more than one source path, and the path whose value the Secret holds (the last)."""

    key: str
    source: str


class HSMSecretSpec(Model):
    """What to replicate from the HSM into which Kubernetes Secret."""

    secret_name: DnsSubdomain | None = None
    """Name of the Secret to write; default: the HSMSecret's name."""
    secret_type: str = pydantic.Field(default="Opaque", min_length=1, max_length=253)
    """Kubernetes Secret type."""
    auto_sync: bool = True
    """Keep the Secret in sync with the HSM; false freezes it."""
    sync_interval: int | None = pydantic.Field(default=None, ge=10, le=86400)
    """Seconds between drift checks, a backstop to change events."""
    hsm_path: str | None = pydantic.Field(default=None, pattern=names.PATH_PATTERN, max_length=200)
    """Path on the HSM below the namespace; default: the HSMSecret's name, unless dataFrom is given."""
    data_from: list[DataFromSource] | None = pydantic.Field(default=None, min_length=1, max_length=16)
    """More paths whose keys are merged in order after hsmPath's (when given): a later path's key wins."""
    device: DnsSubdomain | None = None
    """HSMDevice to read from; optional when the namespace's operator knows exactly one."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """What happens to the Secret when the secret is deleted on the HSM."""
    creation_policy: CreationPolicy = CreationPolicy.OWNER
    """Owner: the Secret is the HSMSecret's. Orphan: it survives the HSMSecret. Merge: only the HSM's keys
    are written into an existing Secret, and removed with the HSMSecret."""
    target: TargetSpec = pydantic.Field(default_factory=TargetSpec)
    """Labels, annotations, type, immutability and templates of the Secret."""
    data: list[KeySelection] | None = pydantic.Field(default=None, max_length=256)
    """Keys to write, renamed; when given, only these keys of the HSM secret reach the Secret."""
    rollout_restart_targets: list[RolloutRestartTarget] = pydantic.Field(default_factory=list, max_length=32)
    """Workloads of this namespace restarted when a pass changes the Secret's data (never its first
    creation, nor a change of its labels, annotations or type only); needs the rollout-restart RBAC."""
    min_restart_interval: int = pydantic.Field(default=60, ge=0, le=86400)
    """Seconds between two restarts of the targets; a change inside it restarts them when it ends."""

    @pydantic.field_validator("data")
    @classmethod
    def _secret_keys_are_unique(cls, data: list[KeySelection] | None) -> list[KeySelection] | None:
        seen = [item.secret_key for item in data or ()]
        twice = sorted({key for key in seen if seen.count(key) > 1})
        if twice:
            raise ValueError(f"secretKey {', '.join(twice)} is given more than once")
        return data

    @pydantic.model_validator(mode="after")
    def _one_type(self) -> HSMSecretSpec:
        if (
            self.target.type is not None
            and "secret_type" in self.model_fields_set
            and self.target.type != self.secret_type
        ):
            raise ValueError("target.type and secretType differ: give the type once")
        return self

    @pydantic.model_validator(mode="after")
    def _merge_leaves_immutability(self) -> HSMSecretSpec:
        if self.creation_policy == CreationPolicy.MERGE and self.target.immutable:
            raise ValueError(
                "target.immutable cannot be set with creationPolicy Merge: the Secret is not ours"
            )
        return self

    def effective_secret_type(self) -> str:
        """The Secret's type: target.type, else secretType."""
        return self.target.type or self.secret_type

    def shaped(self) -> bool:
        """The Secret is more than a copy of the HSM secret's keys under a type: a key selection, templates,
        labels, annotations or immutability."""
        return (
            self.data is not None
            or self.data_from is not None
            or self.target.model_copy(update={"type": None}) != TargetSpec()
        )

    def effective_secret_name(self, object_name: str) -> str:
        """The Secret's name: secretName or the HSMSecret's own name."""
        return self.secret_name or object_name

    def effective_path(self, namespace: str, object_name: str) -> str:
        """The full HSM path, always inside namespace."""
        path = f"{namespace}/{self.hsm_path or object_name}"
        return names.validate_namespaced_path(path, namespace)

    def effective_paths(self, namespace: str, object_name: str) -> list[str]:
        """The full HSM paths merged into the Secret, in order: hsmPath (or the default path when there is
        no dataFrom), then dataFrom's."""
        first = [self.effective_path(namespace, object_name)] if self.hsm_path or not self.data_from else []
        more = [
            names.validate_namespaced_path(f"{namespace}/{item.hsm_path}", namespace)
            for item in self.data_from or ()
        ]
        return list(dict.fromkeys(first + more))


class SecretRef(Model):
    name: str
    namespace: str


class HSMSecretStatus(Model):
    """Observed state of an HSMSecret; checksums shown here are keyed MACs, never raw digests."""

    sync_status: SyncStatus | None = None
    hsm_version: int | None = None
    hsm_checksum: str | None = None
    secret_checksum: str | None = None
    last_sync_time: datetime.datetime | None = None
    last_error: str | None = None
    observed_generation: int | None = None
    secret_ref: SecretRef | None = None
    last_rollout_restart: datetime.datetime | None = None
    """When the rolloutRestartTargets were last restarted."""
    rollout_restart_pending: bool | None = None
    """True while a data change waits for minRestartInterval to end before the targets restart."""
    sources: list[SourceVersion] | None = None
    """With dataFrom: each source path and the version of it the Secret holds."""
    key_conflicts: list[KeyConflict] | None = None
    """With dataFrom: keys held by more than one source, and the source whose value won."""
    owned_keys: list[str] | None = None
    """With creationPolicy Merge: the Secret's keys the operator wrote and will remove (never a value)."""
    conditions: list[Condition] = pydantic.Field(default_factory=list)


# ---------------------------------------------------------------- HSMDevice


class DeviceType(enum.StrEnum):
    PICO_HSM = "PicoHSM"
    SMARTCARD_HSM = "SmartCardHSM"
    NITROKEY_HSM2 = "NitrokeyHSM2"
    YUBIHSM2 = "YubiHSM2"
    GENERIC = "Generic"


class USBDeviceMatch(Model):
    vendor_id: str = pydantic.Field(pattern=USB_ID_PATTERN)
    """USB vendor ID, 4 hex digits (case-insensitive)."""
    product_id: str = pydantic.Field(pattern=USB_ID_PATTERN)
    """USB product ID, 4 hex digits (case-insensitive)."""
    serial_number: str | None = pydantic.Field(default=None, min_length=1, max_length=255)
    """Exact serial number; any serial when omitted."""


class DiscoverySpec(Model):
    usb: list[USBDeviceMatch] = pydantic.Field(default_factory=list)
    """Explicit devices to match."""
    auto_discovery: bool = False
    """Also match known HSMs and readers listed by libccid."""


class PinSecretRef(Model):
    name: DnsSubdomain
    key: str = pydantic.Field(pattern=names.KEY_PATTERN, max_length=253)


class PKCS11Spec(Model):
    library_path: str = pydantic.Field(min_length=1, max_length=4096, pattern=r"^/")
    """Absolute path of the PKCS#11 module inside the agent image."""
    slot_id: int | None = pydantic.Field(default=None, ge=0)
    token_label: str | None = pydantic.Field(default=None, min_length=1, max_length=32)
    pin_secret: PinSecretRef
    """Secret (in the HSMDevice's namespace) holding the user PIN."""
    max_objects: int | None = pydantic.Field(default=None, ge=2, le=1_000_000)
    """Objects the agent lets the token hold, counted over everything on it (other tools' keys and
    certificates too); a write that would pass it is refused. Default: 120 for OpenSC-driven tokens
    (head-room under OpenSC's 128-object limit for keys and certificates), 100000 for SoftHSM2 and
    other modules."""
    max_object_size: int | None = pydantic.Field(default=None, ge=1024, le=64 * 1024 * 1024)
    """Largest value the token stores in one object, in bytes; bigger values are chunked. Default: 4096
    for OpenSC-driven tokens, 65536 for SoftHSM2 and other modules."""


class HSMDeviceSpec(Model):
    device_type: DeviceType
    discovery: DiscoverySpec = pydantic.Field(default_factory=DiscoverySpec)
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict)
    pkcs11: PKCS11Spec
    max_devices: int | None = pydantic.Field(default=None, ge=1, le=64)
    """Matches per node at most; extra devices are left out by serial order."""


# ---------------------------------------------------------------- HSMPool


class PoolPhase(enum.StrEnum):
    PENDING = "Pending"
    AGGREGATING = "Aggregating"
    READY = "Ready"
    PARTIAL = "Partial"
    ERROR = "Error"


class HSMPoolSpec(Model):
    grace_period: str = pydantic.Field(default="5m", pattern=DURATION_PATTERN)
    """How long a silent reporter or a vanished device is still counted."""


class DeviceCapacity(Model):
    """How full one token is, as its agent last reported it (copied as reported: no bounds to reject)."""

    max_objects: int
    """The object budget (spec.pkcs11.maxObjects or the module's default); writes past it are refused."""
    used_objects: int
    """Objects on the token, whoever wrote them."""
    free_objects: int
    """Objects new secrets may still use (one is kept back so every secret can still be overwritten)."""
    own_objects: int
    """Of usedObjects, those this operator's agents wrote."""
    own_bytes: int
    """Bytes of the secret values stored."""
    total_memory: int | None = None
    """Token memory in bytes, where the token reports it."""
    free_memory: int | None = None
    """Free token memory in bytes, where the token reports it."""
    observed_at: datetime.datetime
    """When the agent first reported these figures; kept while they hold, so an idle pool is not rewritten."""


class AggregatedDevice(Model):
    device_path: str
    serial_number: str
    node_name: str
    last_seen: datetime.datetime | None = None
    available: bool
    device_info: dict[str, str] = pydantic.Field(default_factory=dict)
    capacity: DeviceCapacity | None = None
    """Absent while the device's agent is not Ready or did not answer."""


class ReportingPod(Model):
    pod_name: str
    node_name: str
    devices_found: int = pydantic.Field(ge=0)
    last_report_time: datetime.datetime | None = None
    fresh: bool


class PoolNode(Model):
    """One node of the pool: the devices found there, what its kubelet offers agents, its device plugin."""

    node_name: str
    devices_found: int = pydantic.Field(default=0, ge=0)
    """Devices discovery found on the node (its newest report)."""
    capacity: int | None = pydantic.Field(default=None, ge=0)
    """The Node's ``status.capacity`` of the pool's resource: every device the plugin offers (absent: the
    Node was not read yet)."""
    allocatable: int | None = pydantic.Field(default=None, ge=0)
    """The Node's ``status.allocatable`` of the resource: the healthy devices agents can be admitted with."""
    plugin_registered: bool | None = None
    """The kubelet accepted discovery's device plugin (absent: discovery reports no plugin here)."""
    plugin_healthy: int | None = pydantic.Field(default=None, ge=0)
    """Devices the plugin offers the kubelet as healthy."""
    plugin_error: str | None = None
    """Why the plugin is not registered, or why a device could not be allocated (its last failure)."""


class HSMPoolStatus(Model):
    phase: PoolPhase | None = None
    total_devices: int | None = pydantic.Field(default=None, ge=0)
    available_devices: int | None = pydantic.Field(default=None, ge=0)
    aggregated_devices: list[AggregatedDevice] = pydantic.Field(default_factory=list)
    reporting_pods: list[ReportingPod] = pydantic.Field(default_factory=list)
    resource: str | None = None
    """The extended resource each agent requests, ``hsm.j5t.io/<HSMDevice>``."""
    nodes: list[PoolNode] = pydantic.Field(default_factory=list)
    """Per node where discovery runs or the kubelet offers the resource."""
    last_aggregation_time: datetime.datetime | None = None
    conditions: list[Condition] = pydantic.Field(default_factory=list)


SpecKind = Literal["HSMSecret", "HSMDevice", "HSMPool"]
