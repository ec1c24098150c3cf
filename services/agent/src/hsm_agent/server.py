"""The HSMAgent gRPC service: validates every request, calls the store, maps errors to status codes."""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, TypeVar

import grpc

from hsm_agent import errors, listing, metrics, readers
from hsm_agent.store import layout, secret_store
from hsm_agent.tools.legacy import rpc as legacy_rpc
from hsm_common import names
from hsmproto import channel
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Response = TypeVar("Response")

#: The one mapping from the agent's errors to gRPC status codes (the first matching class wins).
STATUS_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (names.InvalidName, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.DeviceUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.TokenFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.TooManyReaders, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unsupported, grpc.StatusCode.UNIMPLEMENTED),
    (errors.NotLoggedIn, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Corrupt, grpc.StatusCode.DATA_LOSS),
    (legacy_rpc.Cancelled, grpc.StatusCode.CANCELLED),
)

_PREFIX = re.compile(r"^[a-z0-9./-]*$")
_MAX_METADATA_BYTES = 64 * 1024
_MAX_WRITER_BYTES = 253
#: The most random bytes one GenerateRandom call returns (the contract says so).
MAX_RANDOM_BYTES = 65536


def status_code(error: Exception) -> grpc.StatusCode:
    """The status code of an error raised while serving a request (INTERNAL for anything unexpected)."""
    for cls, code in STATUS_CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _rpc(
    method: Callable[[Servicer, Request, grpc.ServicerContext], Response],
) -> Callable[[Servicer, Request, grpc.ServicerContext], Response]:
    """Count and time a unary call and turn its errors into status codes (never echoing input values)."""

    @functools.wraps(method)
    def handler(self: Servicer, request: Request, context: grpc.ServicerContext) -> Response:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return method(self, request, context)
        except (errors.AgentError, names.InvalidName) as error:
            code = status_code(error)
            context.abort(code, str(error))
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("request failed", extra={"method": method.__name__})
            context.abort(code, "internal error")
        finally:
            self.metrics.grpc_requests.labels(method.__name__, code.name).inc()
            self.metrics.grpc_seconds.labels(method.__name__).observe(time.perf_counter() - started)

    return handler


def _prefix(prefix: str) -> str:
    if len(prefix.encode()) > 254 or not _PREFIX.match(prefix):
        raise errors.InvalidInput(
            "prefix may hold only lower-case letters, digits, '-', '.' and '/' (254 bytes)"
        )
    return prefix


def _expected(has: bool, value: int) -> int | None:
    if value < 0:
        raise errors.InvalidInput("expected_version must not be negative")
    return value if has else None


def _version(value: int) -> int:
    if value < 0:
        raise errors.InvalidInput("version must not be negative")
    return value


def _writer(value: str) -> str:
    if len(value.encode()) > _MAX_WRITER_BYTES or not value.isprintable():
        raise errors.InvalidInput(f"writer must be printable and at most {_MAX_WRITER_BYTES} bytes")
    return value


def _metadata(request: hsm_pb2.WriteSecretRequest) -> layout.Metadata | None:
    if not request.HasField("metadata"):
        return None
    meta = request.metadata
    if meta.ByteSize() > _MAX_METADATA_BYTES:
        raise errors.InvalidInput(f"metadata is larger than {_MAX_METADATA_BYTES} bytes")
    return layout.Metadata(
        description=meta.description,
        labels=dict(meta.labels),
        format=meta.format,
        data_type=meta.data_type,
        created_at=meta.created_at,
        source=meta.source,
    )


def _metadata_message(meta: layout.Metadata) -> hsm_pb2.SecretMetadata:
    return hsm_pb2.SecretMetadata(
        description=meta.description,
        labels=dict(meta.labels),
        format=meta.format,
        data_type=meta.data_type,
        created_at=meta.created_at,
        source=meta.source,
    )


def _event(kind: Any, head: layout.Head) -> hsm_pb2.SecretEvent:
    return hsm_pb2.SecretEvent(
        kind=kind, path=head.path, version=head.version, checksum=head.checksum, deleted=head.deleted
    )


class Servicer(hsm_pb2_grpc.HSMAgentServicer):  # type: ignore[misc]  # generated, untyped
    """HSMAgent over one SecretStore; the listing, checksum, metadata and watch calls use only the index."""

    def __init__(self, store: secret_store.SecretStore, meters: metrics.Metrics) -> None:
        self.store = store
        self.metrics = meters
        self.stopping = threading.Event()
        self.listings = listing.Listings(store.index)
        self.readers = readers.Readers(cut_off=meters.readers_cut_off.inc)
        meters.readers.set_function(lambda: len(self.readers))
        store.index.listen(self.readers.changed)

    @_rpc
    def GetInfo(
        self, request: hsm_pb2.GetInfoRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.GetInfoResponse:
        info = self.store.info
        hsm_info = hsm_pb2.HSMInfo()
        if info is not None:
            hsm_info = hsm_pb2.HSMInfo(
                label=info.label,
                manufacturer=info.manufacturer,
                model=info.model,
                serial_number=info.serial,
                firmware_version=info.firmware,
            )
        capacity = self.store.capacity()
        return hsm_pb2.GetInfoResponse(
            hsm_info=hsm_info,
            device_name=self.store.config.device_name,
            max_object_size=self.store.budget.max_object_size,
            secret_count=self.store.index.live_count(),
            capacity=hsm_pb2.Capacity(
                max_objects=capacity.max_objects,
                used_objects=capacity.used_objects,
                free_objects=capacity.free_objects,
                own_objects=capacity.own_objects,
                own_bytes=capacity.own_bytes,
                total_memory=capacity.total_memory,
                free_memory=capacity.free_memory,
            ),
        )

    @_rpc
    def ReadSecret(
        self, request: hsm_pb2.ReadSecretRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.ReadSecretResponse:
        path = names.validate_path(request.path)
        # Followed before the value is read: a change after this point is told to the reader.
        followed = self._follow(request.reader, path)
        secret = self.store.read(path)
        return hsm_pb2.ReadSecretResponse(
            secret_data=hsm_pb2.SecretData(data=secret.data),
            version=secret.head.version,
            checksum=secret.head.checksum,
            metadata=_metadata_message(secret.head.metadata),
            followed=followed,
        )

    def _follow(self, reader: str, path: str, *, prefix: bool = False) -> bool:
        return bool(reader) and self.readers.follow(reader, path, prefix=prefix)

    @_rpc
    def WriteSecret(
        self, request: hsm_pb2.WriteSecretRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.WriteSecretResponse:
        path = names.validate_path(request.path)
        data = dict(names.validate_data(dict(request.secret_data.data)))
        metadata = _metadata(request)
        expected = _expected(request.has_expected_version, request.expected_version)
        version = _version(request.version)
        writer = _writer(request.writer)
        try:
            head = self.store.write(path, data, metadata, expected=expected, version=version, writer=writer)
        finally:
            self.readers.settle()
        return hsm_pb2.WriteSecretResponse(version=head.version, checksum=head.checksum)

    @_rpc
    def ReadMetadata(
        self, request: hsm_pb2.ReadMetadataRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.ReadMetadataResponse:
        path = names.validate_path(request.path)
        self.store.require_ready()
        head = self.store.index.get(path)
        if head is None or head.deleted:
            raise errors.NotFound(f"no secret at {path!r}")
        return hsm_pb2.ReadMetadataResponse(
            metadata=_metadata_message(head.metadata), entry=listing.entry(head)
        )

    @_rpc
    def DeleteSecret(
        self, request: hsm_pb2.DeleteSecretRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.DeleteSecretResponse:
        path = names.validate_path(request.path)
        key = names.validate_key(request.key) if request.key else ""
        expected = _expected(request.has_expected_version, request.expected_version)
        version = _version(request.version)
        writer = _writer(request.writer)
        try:
            head = self.store.delete(path, key, expected=expected, version=version, writer=writer)
        finally:
            self.readers.settle()
        return hsm_pb2.DeleteSecretResponse(version=head.version)

    @_rpc
    def ListSecrets(
        self, request: hsm_pb2.ListSecretsRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.ListSecretsResponse:
        prefix = _prefix(request.prefix)
        if request.limit < 0:
            raise errors.InvalidInput(f"limit must not be negative, got {request.limit}")
        self.store.require_ready()
        if request.limit == 0:
            return self.listings.response(prefix, request.include_deleted)
        # Followed before the page is read, as for ReadSecret; whole listings are shared answers and
        # never followed.
        followed = self._follow(request.reader, prefix, prefix=True)
        page = self.listings.page(prefix, request.include_deleted, request.start_after, request.limit)
        page.followed = followed
        return page

    @_rpc
    def GetChecksum(
        self, request: hsm_pb2.GetChecksumRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.GetChecksumResponse:
        path = names.validate_path(request.path)
        self.store.require_ready()
        followed = self._follow(request.reader, path)
        head = self.store.index.get(path)
        if head is None:
            raise errors.NotFound(f"no secret at {path!r}")
        return hsm_pb2.GetChecksumResponse(
            checksum=head.checksum,
            version=head.version,
            deleted=head.deleted,
            updated_at=head.time,
            writer=head.writer,
            followed=followed,
        )

    @_rpc
    def IsConnected(
        self, request: hsm_pb2.IsConnectedRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.IsConnectedResponse:
        return hsm_pb2.IsConnectedResponse(connected=self.store.ready)

    @_rpc
    def Health(self, request: hsm_pb2.HealthRequest, context: grpc.ServicerContext) -> hsm_pb2.HealthResponse:
        status = "healthy" if self.store.ready else "unhealthy"
        return hsm_pb2.HealthResponse(
            status=status, message=f"{self.store.state.value}: {self.store.message}"
        )

    @_rpc
    def ChangePIN(
        self, request: hsm_pb2.ChangePINRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.ChangePINResponse:
        for name, value in (("old_pin", request.old_pin), ("new_pin", request.new_pin)):
            if not 4 <= len(value) <= 255 or not value.isprintable():
                raise errors.InvalidInput(f"{name} must be 4 to 255 printable characters")
        self.store.change_pin(request.old_pin, request.new_pin)
        return hsm_pb2.ChangePINResponse()

    @_rpc
    def ImportLegacy(
        self, request: hsm_pb2.ImportLegacyRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.ImportLegacyResponse:
        # The store serialises its own token calls; two imports at once would each see the other's writes
        # through compare-and-set, so no lock of ours is needed.
        try:
            response = legacy_rpc.import_legacy(self.store, request, context.is_active)
        finally:
            self.readers.settle()
        log.info(
            "legacy_import",
            extra={
                "applied": response.applied,
                "legacy_objects": response.legacy_objects,
                "paths": len(response.paths),
                "undecided": len(response.undecided),
            },
        )
        return response

    @_rpc
    def GenerateRandom(
        self, request: hsm_pb2.GenerateRandomRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.GenerateRandomResponse:
        if not 1 <= request.length <= MAX_RANDOM_BYTES:
            raise errors.InvalidInput(f"length must be 1 to {MAX_RANDOM_BYTES} bytes")
        return hsm_pb2.GenerateRandomResponse(random=self.store.generate_random(request.length))

    def WatchSecrets(
        self, request: hsm_pb2.WatchSecretsRequest, context: grpc.ServicerContext
    ) -> Iterator[hsm_pb2.SecretEvent]:
        """The snapshot (when asked), then every change the agent sees, until either side stops."""
        code = grpc.StatusCode.OK
        try:
            prefix = _prefix(request.prefix)
            self.store.require_ready()
        except errors.AgentError as error:
            code = status_code(error)
            self.metrics.grpc_requests.labels("WatchSecrets", code.name).inc()
            context.abort(code, str(error))
        subscription, snapshot = self.store.index.subscribe(prefix)
        kinds = hsm_pb2.SecretEvent
        try:
            if request.include_snapshot:
                for head in snapshot:
                    yield _event(kinds.KIND_SNAPSHOT, head)
                yield hsm_pb2.SecretEvent(kind=kinds.KIND_SNAPSHOT_END)
            while context.is_active() and not self.stopping.is_set():
                if subscription.overflowed:
                    code = grpc.StatusCode.ABORTED
                    context.abort(code, "the watch fell behind; watch again")
                try:
                    event = subscription.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if event is None:
                    return
                kind = kinds.KIND_DELETED if event.head.deleted else kinds.KIND_CHANGED
                yield _event(kind, event.head)
        finally:
            self.store.index.unsubscribe(subscription)
            self.metrics.grpc_requests.labels("WatchSecrets", code.name).inc()

    def Follow(
        self, requests: Iterator[hsm_pb2.FollowRequest], context: grpc.ServicerContext
    ) -> Iterator[hsm_pb2.FollowEvent]:
        """The reader's name, then grants and change notices, until either side stops."""
        code = grpc.StatusCode.OK
        try:
            self.store.require_ready()
            reader = self.readers.open()
        except errors.AgentError as error:
            code = status_code(error)
            self.metrics.grpc_requests.labels("Follow", code.name).inc()
            context.abort(code, str(error))
        # The reader's renewals and acknowledgements arrive while this thread waits to send.
        threading.Thread(
            target=self._follow_requests, args=(reader, requests), name="follow", daemon=True
        ).start()
        try:
            yield hsm_pb2.FollowEvent(reader=reader.name)
            # Copies are served while the agent serves its token: losing it ends the stream, and with it
            # the reader's copies.
            while context.is_active() and not self.stopping.is_set() and self.store.ready:
                try:
                    item = reader.outbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is None:
                    return
                if isinstance(item, readers.Grant):
                    yield hsm_pb2.FollowEvent(renewed=item.renewed, lease_seconds=item.lease)
                else:
                    yield hsm_pb2.FollowEvent(seq=item.seq, paths=item.paths, prefixes=item.prefixes)
        finally:
            self.readers.close(reader)
            self.metrics.grpc_requests.labels("Follow", code.name).inc()

    def _follow_requests(self, reader: readers.Reader, requests: Iterator[hsm_pb2.FollowRequest]) -> None:
        try:
            # grpcio ends the iteration with a bare RpcError when the call is cancelled.
            with contextlib.suppress(grpc.RpcError):
                for request in requests:
                    if request.ack:
                        self.readers.acknowledge(reader, request.ack)
                    if request.renew:
                        self.readers.renew(reader, request.renew)
        finally:
            self.readers.close(reader)


def build(
    servicer: Servicer, listen: str, credentials: grpc.ServerCredentials | None
) -> tuple[grpc.Server, int]:
    """A gRPC server for servicer bound to listen ("host:port", port 0 picks one); returns it and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="grpc"),
        options=channel.server_options(),
        maximum_concurrent_rpcs=256,
    )
    hsm_pb2_grpc.add_HSMAgentServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return server, port
