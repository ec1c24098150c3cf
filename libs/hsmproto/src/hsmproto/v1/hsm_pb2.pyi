from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HSMInfo(_message.Message):
    __slots__ = ("label", "manufacturer", "model", "serial_number", "firmware_version")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    label: str
    manufacturer: str
    model: str
    serial_number: str
    firmware_version: str
    def __init__(self, label: _Optional[str] = ..., manufacturer: _Optional[str] = ..., model: _Optional[str] = ..., serial_number: _Optional[str] = ..., firmware_version: _Optional[str] = ...) -> None: ...

class SecretData(_message.Message):
    __slots__ = ("data",)
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.ScalarMap[str, bytes]
    def __init__(self, data: _Optional[_Mapping[str, bytes]] = ...) -> None: ...

class SecretMetadata(_message.Message):
    __slots__ = ("description", "labels", "format", "data_type", "created_at", "source")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    description: str
    labels: _containers.ScalarMap[str, str]
    format: str
    data_type: str
    created_at: str
    source: str
    def __init__(self, description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., format: _Optional[str] = ..., data_type: _Optional[str] = ..., created_at: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class SecretEntry(_message.Message):
    __slots__ = ("path", "version", "checksum", "deleted", "keys", "updated_at", "writer")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    path: str
    version: int
    checksum: str
    deleted: bool
    keys: _containers.RepeatedScalarFieldContainer[str]
    updated_at: str
    writer: str
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., checksum: _Optional[str] = ..., deleted: _Optional[bool] = ..., keys: _Optional[_Iterable[str]] = ..., updated_at: _Optional[str] = ..., writer: _Optional[str] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("hsm_info", "device_name", "max_object_size", "secret_count", "capacity")
    HSM_INFO_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECT_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECRET_COUNT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    hsm_info: HSMInfo
    device_name: str
    max_object_size: int
    secret_count: int
    capacity: Capacity
    def __init__(self, hsm_info: _Optional[_Union[HSMInfo, _Mapping]] = ..., device_name: _Optional[str] = ..., max_object_size: _Optional[int] = ..., secret_count: _Optional[int] = ..., capacity: _Optional[_Union[Capacity, _Mapping]] = ...) -> None: ...

class Capacity(_message.Message):
    __slots__ = ("max_objects", "used_objects", "free_objects", "own_objects", "own_bytes", "total_memory", "free_memory")
    MAX_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    USED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    FREE_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    OWN_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    OWN_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MEMORY_FIELD_NUMBER: _ClassVar[int]
    FREE_MEMORY_FIELD_NUMBER: _ClassVar[int]
    max_objects: int
    used_objects: int
    free_objects: int
    own_objects: int
    own_bytes: int
    total_memory: int
    free_memory: int
    def __init__(self, max_objects: _Optional[int] = ..., used_objects: _Optional[int] = ..., free_objects: _Optional[int] = ..., own_objects: _Optional[int] = ..., own_bytes: _Optional[int] = ..., total_memory: _Optional[int] = ..., free_memory: _Optional[int] = ...) -> None: ...

class ReadSecretRequest(_message.Message):
    __slots__ = ("path", "reader")
    PATH_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    path: str
    reader: str
    def __init__(self, path: _Optional[str] = ..., reader: _Optional[str] = ...) -> None: ...

class ReadSecretResponse(_message.Message):
    __slots__ = ("secret_data", "version", "checksum", "metadata", "followed")
    SECRET_DATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FOLLOWED_FIELD_NUMBER: _ClassVar[int]
    secret_data: SecretData
    version: int
    checksum: str
    metadata: SecretMetadata
    followed: bool
    def __init__(self, secret_data: _Optional[_Union[SecretData, _Mapping]] = ..., version: _Optional[int] = ..., checksum: _Optional[str] = ..., metadata: _Optional[_Union[SecretMetadata, _Mapping]] = ..., followed: _Optional[bool] = ...) -> None: ...

class WriteSecretRequest(_message.Message):
    __slots__ = ("path", "secret_data", "metadata", "expected_version", "has_expected_version", "version", "writer")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SECRET_DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    path: str
    secret_data: SecretData
    metadata: SecretMetadata
    expected_version: int
    has_expected_version: bool
    version: int
    writer: str
    def __init__(self, path: _Optional[str] = ..., secret_data: _Optional[_Union[SecretData, _Mapping]] = ..., metadata: _Optional[_Union[SecretMetadata, _Mapping]] = ..., expected_version: _Optional[int] = ..., has_expected_version: _Optional[bool] = ..., version: _Optional[int] = ..., writer: _Optional[str] = ...) -> None: ...

class WriteSecretResponse(_message.Message):
    __slots__ = ("version", "checksum")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    version: int
    checksum: str
    def __init__(self, version: _Optional[int] = ..., checksum: _Optional[str] = ...) -> None: ...

class ReadMetadataRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class ReadMetadataResponse(_message.Message):
    __slots__ = ("metadata", "entry")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    metadata: SecretMetadata
    entry: SecretEntry
    def __init__(self, metadata: _Optional[_Union[SecretMetadata, _Mapping]] = ..., entry: _Optional[_Union[SecretEntry, _Mapping]] = ...) -> None: ...

class DeleteSecretRequest(_message.Message):
    __slots__ = ("path", "key", "expected_version", "has_expected_version", "version", "writer")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    path: str
    key: str
    expected_version: int
    has_expected_version: bool
    version: int
    writer: str
    def __init__(self, path: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ..., has_expected_version: _Optional[bool] = ..., version: _Optional[int] = ..., writer: _Optional[str] = ...) -> None: ...

class DeleteSecretResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ("prefix", "include_deleted", "start_after", "limit", "reader")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    include_deleted: bool
    start_after: str
    limit: int
    reader: str
    def __init__(self, prefix: _Optional[str] = ..., include_deleted: _Optional[bool] = ..., start_after: _Optional[str] = ..., limit: _Optional[int] = ..., reader: _Optional[str] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("paths", "entries", "followed")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FOLLOWED_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    entries: _containers.RepeatedCompositeFieldContainer[SecretEntry]
    followed: bool
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., entries: _Optional[_Iterable[_Union[SecretEntry, _Mapping]]] = ..., followed: _Optional[bool] = ...) -> None: ...

class GetChecksumRequest(_message.Message):
    __slots__ = ("path", "reader")
    PATH_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    path: str
    reader: str
    def __init__(self, path: _Optional[str] = ..., reader: _Optional[str] = ...) -> None: ...

class GetChecksumResponse(_message.Message):
    __slots__ = ("checksum", "version", "deleted", "updated_at", "writer", "followed")
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    FOLLOWED_FIELD_NUMBER: _ClassVar[int]
    checksum: str
    version: int
    deleted: bool
    updated_at: str
    writer: str
    followed: bool
    def __init__(self, checksum: _Optional[str] = ..., version: _Optional[int] = ..., deleted: _Optional[bool] = ..., updated_at: _Optional[str] = ..., writer: _Optional[str] = ..., followed: _Optional[bool] = ...) -> None: ...

class IsConnectedRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IsConnectedResponse(_message.Message):
    __slots__ = ("connected",)
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    connected: bool
    def __init__(self, connected: _Optional[bool] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: str
    def __init__(self, status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ChangePINRequest(_message.Message):
    __slots__ = ("old_pin", "new_pin")
    OLD_PIN_FIELD_NUMBER: _ClassVar[int]
    NEW_PIN_FIELD_NUMBER: _ClassVar[int]
    old_pin: str
    new_pin: str
    def __init__(self, old_pin: _Optional[str] = ..., new_pin: _Optional[str] = ...) -> None: ...

class ChangePINResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchSecretsRequest(_message.Message):
    __slots__ = ("prefix", "include_snapshot")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    include_snapshot: bool
    def __init__(self, prefix: _Optional[str] = ..., include_snapshot: _Optional[bool] = ...) -> None: ...

class SecretEvent(_message.Message):
    __slots__ = ("kind", "path", "version", "checksum", "deleted")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[SecretEvent.Kind]
        KIND_SNAPSHOT: _ClassVar[SecretEvent.Kind]
        KIND_SNAPSHOT_END: _ClassVar[SecretEvent.Kind]
        KIND_CHANGED: _ClassVar[SecretEvent.Kind]
        KIND_DELETED: _ClassVar[SecretEvent.Kind]
    KIND_UNSPECIFIED: SecretEvent.Kind
    KIND_SNAPSHOT: SecretEvent.Kind
    KIND_SNAPSHOT_END: SecretEvent.Kind
    KIND_CHANGED: SecretEvent.Kind
    KIND_DELETED: SecretEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    kind: SecretEvent.Kind
    path: str
    version: int
    checksum: str
    deleted: bool
    def __init__(self, kind: _Optional[_Union[SecretEvent.Kind, str]] = ..., path: _Optional[str] = ..., version: _Optional[int] = ..., checksum: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class KnownLegacyPath(_message.Message):
    __slots__ = ("path", "keys")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    path: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ImportLegacyRequest(_message.Message):
    __slots__ = ("namespace", "mapping", "known_paths", "apply", "remove_legacy", "import_incomplete")
    class MappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PATHS_FIELD_NUMBER: _ClassVar[int]
    APPLY_FIELD_NUMBER: _ClassVar[int]
    REMOVE_LEGACY_FIELD_NUMBER: _ClassVar[int]
    IMPORT_INCOMPLETE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    mapping: _containers.ScalarMap[str, str]
    known_paths: _containers.RepeatedCompositeFieldContainer[KnownLegacyPath]
    apply: bool
    remove_legacy: bool
    import_incomplete: bool
    def __init__(self, namespace: _Optional[str] = ..., mapping: _Optional[_Mapping[str, str]] = ..., known_paths: _Optional[_Iterable[_Union[KnownLegacyPath, _Mapping]]] = ..., apply: _Optional[bool] = ..., remove_legacy: _Optional[bool] = ..., import_incomplete: _Optional[bool] = ...) -> None: ...

class LegacyPathResult(_message.Message):
    __slots__ = ("legacy_path", "target", "status", "outcome", "detail", "sizes", "missing_keys", "reasons", "metadata_dropped", "legacy_objects", "legacy_removed")
    class SizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    LEGACY_PATH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    MISSING_KEYS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_DROPPED_FIELD_NUMBER: _ClassVar[int]
    LEGACY_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    LEGACY_REMOVED_FIELD_NUMBER: _ClassVar[int]
    legacy_path: str
    target: str
    status: str
    outcome: str
    detail: str
    sizes: _containers.ScalarMap[str, int]
    missing_keys: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    metadata_dropped: _containers.RepeatedScalarFieldContainer[str]
    legacy_objects: int
    legacy_removed: int
    def __init__(self, legacy_path: _Optional[str] = ..., target: _Optional[str] = ..., status: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., sizes: _Optional[_Mapping[str, int]] = ..., missing_keys: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[str]] = ..., metadata_dropped: _Optional[_Iterable[str]] = ..., legacy_objects: _Optional[int] = ..., legacy_removed: _Optional[int] = ...) -> None: ...

class LegacyReading(_message.Message):
    __slots__ = ("path", "key")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    path: str
    key: str
    def __init__(self, path: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class UndecidedLabel(_message.Message):
    __slots__ = ("label", "readings", "reason")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    label: str
    readings: _containers.RepeatedCompositeFieldContainer[LegacyReading]
    reason: str
    def __init__(self, label: _Optional[str] = ..., readings: _Optional[_Iterable[_Union[LegacyReading, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class ImportLegacyResponse(_message.Message):
    __slots__ = ("legacy_objects", "paths", "undecided", "known_missing", "applied")
    LEGACY_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    UNDECIDED_FIELD_NUMBER: _ClassVar[int]
    KNOWN_MISSING_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    legacy_objects: int
    paths: _containers.RepeatedCompositeFieldContainer[LegacyPathResult]
    undecided: _containers.RepeatedCompositeFieldContainer[UndecidedLabel]
    known_missing: _containers.RepeatedScalarFieldContainer[str]
    applied: bool
    def __init__(self, legacy_objects: _Optional[int] = ..., paths: _Optional[_Iterable[_Union[LegacyPathResult, _Mapping]]] = ..., undecided: _Optional[_Iterable[_Union[UndecidedLabel, _Mapping]]] = ..., known_missing: _Optional[_Iterable[str]] = ..., applied: _Optional[bool] = ...) -> None: ...

class GenerateRandomRequest(_message.Message):
    __slots__ = ("length",)
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    length: int
    def __init__(self, length: _Optional[int] = ...) -> None: ...

class GenerateRandomResponse(_message.Message):
    __slots__ = ("random",)
    RANDOM_FIELD_NUMBER: _ClassVar[int]
    random: bytes
    def __init__(self, random: _Optional[bytes] = ...) -> None: ...

class FollowRequest(_message.Message):
    __slots__ = ("renew", "ack")
    RENEW_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    renew: int
    ack: int
    def __init__(self, renew: _Optional[int] = ..., ack: _Optional[int] = ...) -> None: ...

class FollowEvent(_message.Message):
    __slots__ = ("reader", "renewed", "lease_seconds", "seq", "paths", "prefixes")
    READER_FIELD_NUMBER: _ClassVar[int]
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    reader: str
    renewed: int
    lease_seconds: float
    seq: int
    paths: _containers.RepeatedScalarFieldContainer[str]
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reader: _Optional[str] = ..., renewed: _Optional[int] = ..., lease_seconds: _Optional[float] = ..., seq: _Optional[int] = ..., paths: _Optional[_Iterable[str]] = ..., prefixes: _Optional[_Iterable[str]] = ...) -> None: ...
