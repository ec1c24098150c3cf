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

from . import names

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
    """Path on the HSM below the namespace; default: the HSMSecret's name."""
    device: DnsSubdomain | None = None
    """HSMDevice to read from; optional when the namespace's operator knows exactly one."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """What happens to the Secret when the secret is deleted on the HSM."""

    def effective_secret_name(self, object_name: str) -> str:
        """The Secret's name: secretName or the HSMSecret's own name."""
        return self.secret_name or object_name

    def effective_path(self, namespace: str, object_name: str) -> str:
        """The full HSM path, always inside namespace."""
        path = f"{namespace}/{self.hsm_path or object_name}"
        return names.validate_namespaced_path(path, namespace)


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
