"""What agents hold and answer, as the manager's rules see it: plain values, no gRPC and no I/O."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class PathState:
    """What one device holds for one path (its index entry); version 0 means absent."""

    version: int
    checksum: str = ""
    deleted: bool = False
    updated_at: str = ""
    """RFC 3339 time the device's copy was written (empty where unknown)."""
    writer: str = ""

    @property
    def live(self) -> bool:
        """True when the device holds readable data for the path."""
        return self.version > 0 and not self.deleted

    def same_as(self, other: PathState) -> bool:
        """True when both hold the same state (version, data and tombstone flag)."""
        return (self.version, self.checksum, self.deleted) == (other.version, other.checksum, other.deleted)


ABSENT = PathState(version=0)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One path in an agent's listing."""

    path: str
    state: PathState
    keys: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Metadata:
    """User metadata carried with a secret to every device."""

    description: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    format: str = ""
    data_type: str = ""
    created_at: str = ""
    source: str = ""


@dataclasses.dataclass(frozen=True)
class Secret:
    """A secret as read from one device."""

    path: str
    version: int
    checksum: str
    data: Mapping[str, bytes]
    metadata: Metadata


@dataclasses.dataclass(frozen=True)
class Capacity:
    """How full a device's token is."""

    max_objects: int
    used_objects: int
    free_objects: int
    own_objects: int
    own_bytes: int
    total_memory: int | None = None
    free_memory: int | None = None


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """What an agent says of its token."""

    label: str
    manufacturer: str
    model: str
    serial_number: str
    firmware_version: str
    max_object_size: int
    secret_count: int
    capacity: Capacity | None


@dataclasses.dataclass(frozen=True)
class Health:
    connected: bool
    status: str
    message: str


class EventKind(enum.Enum):
    SNAPSHOT = "snapshot"
    """One path of the initial snapshot."""
    SNAPSHOT_END = "snapshot-end"
    """Events after it are live changes."""
    CHANGED = "changed"
    DELETED = "deleted"


@dataclasses.dataclass(frozen=True)
class Event:
    """One change an agent saw (its own writes and its rescans)."""

    kind: EventKind
    path: str = ""
    version: int = 0
    checksum: str = ""
    deleted: bool = False
