"""One typed client per agent: every RPC the manager makes, with one timeout policy and one error tree."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast

import grpc

from hsm_manager.decide import model
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

from . import copies as copies_
from . import errors

#: Deadline of one unary call: a dead agent must not hold a request or a sync pass for long (seconds).
DEFAULT_TIMEOUT = 5.0

#: Deadline of one legacy import: within the API workers' timeout; an import cut short by it is finished by
#: the next call (the agent stops after the path in progress when its caller is gone).
IMPORT_TIMEOUT = 25.0

Observer = Callable[[str, str, float], None]
"""Told of every call: (method, outcome — "OK" or a status code name, seconds)."""

Expiry = Callable[[], datetime.datetime | None]
"""notAfter of the certificate the agent serves (None: unknown), asked only once a handshake refused it
as expired (gateway.peek)."""

Response = TypeVar("Response")

#: A read not meant to be kept carries no reader name.
_NO_TICKET = copies_.Ticket(0, "")
#: What a kept state is counted as against the copies' budget.
_STATE_BYTES = 200


class AgentClient(Protocol):
    """What the manager can ask of one agent. Failures raise errors.AgentCallError subclasses."""

    @property
    def name(self) -> str:
        """The agent's name (its Deployment, and the name in its certificate)."""

    def entries(
        self, prefix: str, include_deleted: bool, *, after: str = "", limit: int = 0
    ) -> list[model.Entry]:
        """Index entries of paths starting with prefix (tombstones when include_deleted), in path order:
        with a limit, only the first limit of those whose path sorts after after."""

    def state(self, path: str, *, copy: bool = True) -> model.PathState:
        """What the device holds for exactly path (ABSENT when nothing). copy=False asks the agent and
        keeps nothing: a write's own reads, which the write makes stale at once."""

    def read(self, path: str) -> model.Secret:
        """The live secret at path (errors.NotFound when absent or deleted)."""

    def metadata(self, path: str) -> tuple[model.Entry, model.Metadata]:
        """Index entry and user metadata of the live secret at path (no value read)."""

    def write(
        self,
        path: str,
        data: Mapping[str, bytes],
        metadata: model.Metadata | None,
        *,
        expected: int | None = None,
        version: int = 0,
        writer: str = "",
    ) -> int:
        """Replace path (compare-and-set against expected, at exactly version when given); its new version."""

    def delete(
        self, path: str, *, key: str = "", expected: int | None = None, version: int = 0, writer: str = ""
    ) -> int:
        """Tombstone path (or write a version without key); the new version."""

    def info(self) -> model.DeviceInfo: ...

    def health(self, wait: bool = False) -> model.Health:
        """Health and connection of the agent; wait rides out a reconnect up to the deadline."""

    def generate_random(self, length: int) -> bytes:
        """length bytes from the token's random number generator (errors.Unsupported when it has none)."""

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        """Change the token's PIN; rides out a reconnect up to the deadline (it must reach every device)."""

    def watch(self) -> Watch:
        """A stream of the agent's changes, starting with a snapshot of its index."""

    def import_legacy(self, request: LegacyImportRequest) -> LegacyImport:
        """Plan (with request.apply: import) the Go operator's objects on the agent's token; never values."""


@dataclasses.dataclass(frozen=True)
class LegacyImportRequest:
    """What the agent's importer takes (see ``hsm-agent import-legacy``)."""

    namespace: str = ""
    """Namespace of every legacy path no mapping rule matches ("" none: such paths are unmapped)."""
    mapping: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Legacy path or prefix → namespace."""
    known_paths: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Legacy paths known to exist → the keys they should hold (empty: not known)."""
    apply: bool = False
    remove_legacy: bool = False
    import_incomplete: bool = False


@dataclasses.dataclass(frozen=True)
class LegacyPath:
    """What became of one legacy path: names, keys and sizes, never a value."""

    legacy_path: str
    target: str
    status: str
    outcome: str
    detail: str
    sizes: Mapping[str, int]
    missing_keys: tuple[str, ...]
    reasons: tuple[str, ...]
    metadata_dropped: tuple[str, ...]
    legacy_objects: int
    legacy_removed: int


@dataclasses.dataclass(frozen=True)
class UndecidedLabel:
    label: str
    readings: tuple[tuple[str, str], ...]
    """(path, key) of every reading."""
    reason: str


@dataclasses.dataclass(frozen=True)
class LegacyImport:
    """One agent's plan or import of its token's legacy objects."""

    legacy_objects: int
    paths: tuple[LegacyPath, ...]
    undecided: tuple[UndecidedLabel, ...]
    known_missing: tuple[str, ...]
    applied: bool


class Watch(Protocol):
    def __iter__(self) -> Iterator[model.Event]: ...

    def cancel(self) -> None: ...


class GrpcAgentClient:
    """AgentClient over one gRPC channel (owned by the endpoint directory, which reuses it)."""

    def __init__(
        self,
        name: str,
        stub: hsm_pb2_grpc.HSMAgentStub,
        timeout: float = DEFAULT_TIMEOUT,
        observe: Observer | None = None,
        expiry: Expiry | None = None,
        copies: copies_.Copies | None = None,
    ) -> None:
        self._name = name
        self._stub = stub
        self._timeout = timeout
        self._observe = observe
        self._expiry = expiry
        self._copies = copies

    @property
    def name(self) -> str:
        return self._name

    def _call(
        self,
        method: str,
        request: object,
        wait: bool = False,
        pin_call: bool = False,
        timeout: float | None = None,
    ) -> Any:
        started = time.perf_counter()
        outcome = "OK"
        deadline = self._timeout if timeout is None else timeout
        try:
            return getattr(self._stub, method)(request, timeout=deadline, wait_for_ready=wait)
        except grpc.RpcError as error:
            outcome = errors.code_name(error)
            raise self._error(error, pin_call) from None
        finally:
            if self._observe is not None:
                self._observe(method, outcome, time.perf_counter() - started)

    def _error(self, error: grpc.RpcError, pin_call: bool = False) -> errors.AgentCallError:
        """The error of a failed call; when the agent's certificate was refused as expired, it says since
        when (one more handshake, on that failure alone: calls that succeed never pay for it)."""
        found = errors.translate(self._name, error, pin_call)
        if isinstance(found, errors.Untrusted) and found.expired and self._expiry is not None:
            not_after = self._expiry()
            if not_after is not None:
                return errors.expired_at(self._name, not_after)
        return found

    def entries(
        self, prefix: str, include_deleted: bool, *, after: str = "", limit: int = 0
    ) -> list[model.Entry]:
        # Pages are followed, whole listings are not (the agent shares their answers between callers).
        page = (include_deleted, after, limit)
        copies = self._copies if limit else None
        if copies is not None:
            kept = copies.get(copies_.PAGE, prefix, page)
            if kept is not None:
                return list(kept)
        ticket = copies.begin() if copies is not None else _NO_TICKET
        request = hsm_pb2.ListSecretsRequest(
            prefix=prefix,
            include_deleted=include_deleted,
            start_after=after,
            limit=limit,
            reader=ticket.reader,
        )
        response = self._call("ListSecrets", request)
        found = [_entry(entry) for entry in response.entries]
        if response.followed and copies is not None:
            copies.keep(ticket, copies_.PAGE, prefix, tuple(found), response.ByteSize(), page)
        return found

    def state(self, path: str, *, copy: bool = True) -> model.PathState:
        copies = self._copies if copy else None
        kept = copies.get(copies_.STATE, path) if copies is not None else None
        if kept is not None:
            return cast(model.PathState, kept)
        ticket = copies.begin() if copies is not None else _NO_TICKET
        try:
            answer = self._call("GetChecksum", hsm_pb2.GetChecksumRequest(path=path, reader=ticket.reader))
        except errors.NotFound:
            return model.ABSENT
        state = model.PathState(
            version=answer.version,
            checksum=answer.checksum,
            deleted=answer.deleted,
            updated_at=answer.updated_at,
            writer=answer.writer,
        )
        if answer.followed and copies is not None:
            copies.keep(ticket, copies_.STATE, path, state, _STATE_BYTES)
        return state

    def read(self, path: str) -> model.Secret:
        copies = self._copies
        kept = copies.get(copies_.SECRET, path) if copies is not None else None
        if kept is not None:
            return cast(model.Secret, kept)
        ticket = copies.begin() if copies is not None else _NO_TICKET
        response = self._call("ReadSecret", hsm_pb2.ReadSecretRequest(path=path, reader=ticket.reader))
        secret = model.Secret(
            path=path,
            version=response.version,
            checksum=response.checksum,
            data=dict(response.secret_data.data),
            metadata=_metadata(response.metadata),
        )
        if response.followed and copies is not None:
            copies.keep(ticket, copies_.SECRET, path, secret, response.ByteSize())
        return secret

    def metadata(self, path: str) -> tuple[model.Entry, model.Metadata]:
        response = self._call("ReadMetadata", hsm_pb2.ReadMetadataRequest(path=path))
        return _entry(response.entry), _metadata(response.metadata)

    def write(
        self,
        path: str,
        data: Mapping[str, bytes],
        metadata: model.Metadata | None,
        *,
        expected: int | None = None,
        version: int = 0,
        writer: str = "",
    ) -> int:
        request = hsm_pb2.WriteSecretRequest(
            path=path,
            secret_data=hsm_pb2.SecretData(data=dict(data)),
            expected_version=expected or 0,
            has_expected_version=expected is not None,
            version=version,
            writer=writer,
        )
        if metadata is not None:
            request.metadata.CopyFrom(_metadata_message(metadata))
        return int(self._call("WriteSecret", request).version)

    def delete(
        self, path: str, *, key: str = "", expected: int | None = None, version: int = 0, writer: str = ""
    ) -> int:
        request = hsm_pb2.DeleteSecretRequest(
            path=path,
            key=key,
            expected_version=expected or 0,
            has_expected_version=expected is not None,
            version=version,
            writer=writer,
        )
        return int(self._call("DeleteSecret", request).version)

    def info(self) -> model.DeviceInfo:
        response = self._call("GetInfo", hsm_pb2.GetInfoRequest())
        hsm = response.hsm_info
        capacity = None
        if response.HasField("capacity"):
            c = response.capacity
            capacity = model.Capacity(
                max_objects=c.max_objects,
                used_objects=c.used_objects,
                free_objects=c.free_objects,
                own_objects=c.own_objects,
                own_bytes=c.own_bytes,
                total_memory=c.total_memory if c.HasField("total_memory") else None,
                free_memory=c.free_memory if c.HasField("free_memory") else None,
            )
        return model.DeviceInfo(
            label=hsm.label,
            manufacturer=hsm.manufacturer,
            model=hsm.model,
            serial_number=hsm.serial_number,
            firmware_version=hsm.firmware_version,
            max_object_size=response.max_object_size,
            secret_count=response.secret_count,
            capacity=capacity,
        )

    def health(self, wait: bool = False) -> model.Health:
        health = self._call("Health", hsm_pb2.HealthRequest(), wait=wait)
        connected = self._call("IsConnected", hsm_pb2.IsConnectedRequest(), wait=wait)
        return model.Health(connected=connected.connected, status=health.status, message=health.message)

    def generate_random(self, length: int) -> bytes:
        return bytes(self._call("GenerateRandom", hsm_pb2.GenerateRandomRequest(length=length)).random)

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        self._call(
            "ChangePIN", hsm_pb2.ChangePINRequest(old_pin=old_pin, new_pin=new_pin), wait=True, pin_call=True
        )

    def import_legacy(self, request: LegacyImportRequest) -> LegacyImport:
        message = hsm_pb2.ImportLegacyRequest(
            namespace=request.namespace,
            mapping=dict(request.mapping),
            known_paths=[
                hsm_pb2.KnownLegacyPath(path=path, keys=list(keys))
                for path, keys in request.known_paths.items()
            ],
            apply=request.apply,
            remove_legacy=request.remove_legacy,
            import_incomplete=request.import_incomplete,
        )
        response = self._call("ImportLegacy", message, timeout=max(self._timeout, IMPORT_TIMEOUT))
        return LegacyImport(
            legacy_objects=response.legacy_objects,
            paths=tuple(_legacy_path(result) for result in response.paths),
            undecided=tuple(
                UndecidedLabel(item.label, tuple((r.path, r.key) for r in item.readings), item.reason)
                for item in response.undecided
            ),
            known_missing=tuple(response.known_missing),
            applied=response.applied,
        )

    def watch(self) -> Watch:
        return _Stream(
            self._error, self._stub.WatchSecrets(hsm_pb2.WatchSecretsRequest(include_snapshot=True))
        )


class _Stream:
    """A WatchSecrets call yielding model events; ending with errors.AgentCallError unless cancelled."""

    def __init__(self, failed: Callable[[grpc.RpcError], errors.AgentCallError], call: Any) -> None:
        self._failed = failed
        self._call = call

    def __iter__(self) -> Iterator[model.Event]:
        try:
            for event in self._call:
                yield _event(event)
        except grpc.RpcError as error:
            raise self._failed(error) from None

    def cancel(self) -> None:
        self._call.cancel()


_EVENT_KINDS = {
    hsm_pb2.SecretEvent.KIND_SNAPSHOT: model.EventKind.SNAPSHOT,
    hsm_pb2.SecretEvent.KIND_SNAPSHOT_END: model.EventKind.SNAPSHOT_END,
    hsm_pb2.SecretEvent.KIND_CHANGED: model.EventKind.CHANGED,
    hsm_pb2.SecretEvent.KIND_DELETED: model.EventKind.DELETED,
}


def _event(event: hsm_pb2.SecretEvent) -> model.Event:
    return model.Event(
        kind=_EVENT_KINDS.get(event.kind, model.EventKind.CHANGED),
        path=event.path,
        version=event.version,
        checksum=event.checksum,
        deleted=event.deleted,
    )


def _legacy_path(result: hsm_pb2.LegacyPathResult) -> LegacyPath:
    return LegacyPath(
        legacy_path=result.legacy_path,
        target=result.target,
        status=result.status,
        outcome=result.outcome,
        detail=result.detail,
        sizes=dict(result.sizes),
        missing_keys=tuple(result.missing_keys),
        reasons=tuple(result.reasons),
        metadata_dropped=tuple(result.metadata_dropped),
        legacy_objects=result.legacy_objects,
        legacy_removed=result.legacy_removed,
    )


def _entry(entry: hsm_pb2.SecretEntry) -> model.Entry:
    return model.Entry(
        path=entry.path,
        state=model.PathState(
            version=entry.version,
            checksum=entry.checksum,
            deleted=entry.deleted,
            updated_at=entry.updated_at,
            writer=entry.writer,
        ),
        keys=tuple(entry.keys),
    )


def _metadata(message: hsm_pb2.SecretMetadata) -> model.Metadata:
    return model.Metadata(
        description=message.description,
        labels=dict(message.labels),
        format=message.format,
        data_type=message.data_type,
        created_at=message.created_at,
        source=message.source,
    )


def _metadata_message(metadata: model.Metadata) -> hsm_pb2.SecretMetadata:
    return hsm_pb2.SecretMetadata(
        description=metadata.description,
        labels=dict(metadata.labels),
        format=metadata.format,
        data_type=metadata.data_type,
        created_at=metadata.created_at,
        source=metadata.source,
    )
