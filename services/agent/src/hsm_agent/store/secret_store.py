"""The secret store: crash-safe writes, verified reads and the connection to the token, over one index."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import logging
import threading
import time
from collections.abc import Iterator, Mapping

from hsm_agent import errors, metrics
from hsm_common import checksum, times

from . import budget, codec, collector, index, layout, pin, rawcalls, scan, token, valuecache

log = logging.getLogger(__name__)


#: Every how many periodic looks the token is rescanned in full even when its objects look unchanged.
FULL_RESCAN_EVERY = 12


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    library_path: str
    """PKCS#11 module to load."""
    pin_file: str
    """File holding the user PIN; re-read when a login is needed."""
    token_label: str | None = None
    """Label of the token to serve (or slot_id)."""
    slot_id: int | None = None
    """Slot of the token to serve."""
    serial: str | None = None
    """Refuse to serve unless the token has this serial number."""
    max_objects: int | None = None
    """Object budget of the token (all objects counted); None: the module's default."""
    max_object_size: int | None = None
    """Largest object written; bigger secrets are chunked. None: the module's default."""
    rescan_interval: float = 300.0
    """Seconds between full rescans (they catch writes made with other tools)."""
    probe_interval: float = 2.0
    """Seconds between checks that the token is still there."""
    retry_interval: float = 1.0
    """Seconds between reconnection attempts while the token is lost."""
    tombstone_retention: float = 7 * 86400.0
    """Seconds a tombstone is kept before a rescan removes it."""
    device_name: str = ""
    """Writer recorded in heads when a request names none."""
    collect_idle: float = 0.25
    """Seconds without a write before superseded objects are destroyed in the background (one at a time,
    so a write arriving meanwhile waits for at most one destroy)."""
    collect_backlog: int = 1000
    """Superseded objects allowed to wait; past it each write destroys one itself, so a write load that
    never pauses cannot grow the token (and with it the cost of every destroy) without bound."""
    read_cache_bytes: int = 16 * 1024 * 1024
    """Memory for values already read, so reading them again makes no call to the token; 0: none."""


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DISCONNECTED = "disconnected"
    NO_PIN = "no-pin"
    WRONG_PIN = "wrong-pin"
    LOCKED = "locked"
    REFUSED = "refused"


_NOT_LOGGED_IN = {State.NO_PIN, State.WRONG_PIN, State.LOCKED, State.REFUSED}
#: Applications of this store's own objects: foreign_objects never hands them out, so no caller of
#: destroy_foreign can destroy a record, chunk or ledger.
_OURS = frozenset({layout.APPLICATION_RECORD, layout.APPLICATION_CHUNK, layout.APPLICATION_LEDGER})


@dataclasses.dataclass(frozen=True)
class Secret:
    head: layout.Head
    data: dict[str, bytes]


class SecretStore:
    """One token's secrets. Reads run concurrently; writes, scans and reconnects run one at a time."""

    def __init__(
        self, config: StoreConfig, meters: metrics.Metrics, pin_source: pin.Source | None = None
    ) -> None:
        self.config = config
        self.budget = budget.for_module(config.library_path, config.max_objects, config.max_object_size)
        self.index = index.Index()
        self.info: token.TokenInfo | None = None
        self.login_attempts = 0
        self.last_probe_ok: float | None = None
        self._metrics = meters
        self._token = token.Token(
            config.library_path, config.token_label, config.slot_id, meters.observe_pkcs11, config.serial
        )
        self._pin: pin.Source = pin_source or pin.PinFile(config.pin_file)
        # Serialises writes, deletes, scans and reconnects: a version is decided from the index and must
        # not change until its head is on the token. Reads only look up the dicts below (atomic in CPython).
        self._write_lock = threading.RLock()
        self._looks = 0
        """Periodic looks for outside changes since the last full rescan."""
        # What is on the token, by role; reads only look these up (atomic in CPython).
        self._records: dict[str, tuple[str, token.Handle]] = {}
        """path → (generation, record object) of the generation the index serves."""
        self._chunks: dict[str, token.Handle] = {}
        self._path_objects: dict[str, list[token.Handle]] = {}
        self._path_bytes: dict[str, int] = {}
        self._ledger: scan.LedgerState | None = None
        self._foreign = 0
        self._own = 0
        self._memory = rawcalls.Memory(None, None)
        self._verified: set[tuple[str, str]] = set()
        self._values = valuecache.ValueCache(config.read_cache_bytes)
        self._state = State.STARTING
        self._message = "starting"
        self._rejected_pin: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self._collector = collector.Collector(
            self._destroy_one, self._collect_step, meters, config.collect_idle, config.retry_interval
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def state(self) -> State:
        return self._state

    @property
    def message(self) -> str:
        return self._message

    @property
    def ready(self) -> bool:
        return self._state is State.READY

    def start(self) -> None:
        """Connect in the background and keep the connection, probes and rescans going."""
        self._keeper = threading.Thread(target=self._keep, name="store-keeper", daemon=True)
        self._keeper.start()
        self._collector.start()

    def stop(self) -> None:
        """Stop the upkeep and release the token; pending garbage is left for the next start-up scan."""
        self._stopping.set()
        self._wake.set()
        self._collector.stop()
        if self._keeper is not None:
            self._keeper.join(timeout=30)
        with self._write_lock:
            self._token.close()
            self._set_state(State.DISCONNECTED, "stopped")

    def _set_state(self, state: State, message: str) -> None:
        if state is not self._state:
            log.info("token state", extra={"state": state.value, "reason": message})
        self._state, self._message = state, message
        self._metrics.connected.set(1 if state is State.READY else 0)

    def _keep(self) -> None:
        next_probe = next_rescan = time.monotonic()
        next_rescan += self.config.rescan_interval
        while not self._stopping.is_set():
            now = time.monotonic()
            try:
                if self._state is not State.READY:
                    self._connect()
                elif now >= next_rescan:
                    next_rescan = now + self.config.rescan_interval
                    self._periodic_rescan()
                elif now >= next_probe:
                    next_probe = now + self.config.probe_interval
                    self.probe()
            except errors.AgentError as error:
                log.warning(
                    "token upkeep failed", extra={"error": str(error), "error_type": type(error).__name__}
                )
            except Exception:
                log.exception("token upkeep crashed")
            delay = (
                self.config.retry_interval if self._state is not State.READY else self.config.probe_interval
            )
            self._wake.wait(timeout=min(delay, max(0.05, next_rescan - time.monotonic())))
            self._wake.clear()

    def connect_once(self) -> None:
        """Log in from the calling thread with exactly one login attempt and load the index, without the
        upkeep threads (command-line tools); raise what stopped it: WrongPin, NotLoggedIn (no PIN, locked
        token, other serial) or DeviceUnavailable (ModuleUnavailable when the module does not load)."""
        self._connect(raise_failure=True)

    def _connect(self, raise_failure: bool = False) -> None:
        """Log in unless the PIN was rejected before or the token has another serial."""
        if self._state is State.REFUSED:
            return
        try:
            current = self._pin.read()
        except errors.NotLoggedIn as error:
            self._set_state(State.NO_PIN, str(error))
            if raise_failure:
                raise
            return
        if self._rejected_pin == pin.fingerprint(current):
            return
        with self._write_lock:
            self.login_attempts += 1
            self._metrics.login_attempts.inc()
            try:
                info = self._token.connect(current)
            except errors.WrongPin as error:
                self._rejected_pin = pin.fingerprint(current)
                self._metrics.login_failures.labels("wrong_pin").inc()
                self._set_state(State.WRONG_PIN, f"{error}; waiting for the PIN file to change")
                if raise_failure:
                    raise
                return
            except errors.NotLoggedIn as error:
                self._rejected_pin = pin.fingerprint(current)
                self._metrics.login_failures.labels("refused").inc()
                self._set_state(State.LOCKED, str(error))
                if raise_failure:
                    raise
                return
            except errors.DeviceUnavailable as error:
                self._set_state(State.DISCONNECTED, str(error))
                if raise_failure:
                    raise
                return
            self._rejected_pin = None
            if self.config.serial and info.serial != self.config.serial:
                self._token.close()
                self._set_state(State.REFUSED, f"token serial {info.serial!r} is not {self.config.serial!r}")
                if raise_failure:
                    raise errors.NotLoggedIn(self._message)
                return
            self.info = info
            recovered = self._state is State.DISCONNECTED
            self._load(scan.full_scan(self._token, lambda _: False, self.config.tombstone_retention))
            self.last_probe_ok = time.time()
            self._set_state(State.READY, "logged in, index loaded")
            if recovered:
                self._metrics.recoveries.inc()

    def _load(self, snapshot: scan.Snapshot) -> int:
        self._records = dict(snapshot.records)
        self._chunks = dict(snapshot.chunks)
        self._path_objects = {path: list(handles) for path, handles in snapshot.path_objects.items()}
        self._path_bytes = dict(snapshot.path_bytes)
        self._ledger = snapshot.ledger
        self._foreign = snapshot.usage.foreign_objects
        self._own = snapshot.usage.own_objects
        self._verified = {(head.path, head.generation) for head in snapshot.heads.values()}
        # A scan is how the store learns what other tools did to the token: a record one rewrote under a
        # label read before must be read anew.
        self._values.clear()
        # The scan destroyed every superseded generation itself: nothing is left to queue.
        self._collector.clear()
        self._metrics.leftovers.inc(snapshot.collected)
        changes = self.index.replace_all(snapshot.heads)
        self._metrics.index_size.set(len(self.index))
        if snapshot.ledger_stale:
            try:
                self._rewrite_ledger(None, [])
            except errors.TokenFull as error:
                log.warning("ledger not compacted", extra={"error": str(error)})
        self._refresh_memory()
        return changes

    def _lost(self, error: errors.AgentError) -> None:
        """Drop the connection after the token failed; the keeper reconnects."""
        with self._write_lock:
            if self._state is State.READY:
                self._set_state(State.DISCONNECTED, str(error))
                self._records, self._chunks, self._path_objects = {}, {}, {}
                self._values.clear()
                # Handles die with the session; the reconnect's full scan collects these objects.
                self._collector.clear()
        self._wake.set()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a failing token into a lost connection (and the error the caller sees)."""
        try:
            yield
        except errors.WrongPin:
            raise  # only login and change-PIN check a PIN: the session itself is fine
        except (errors.DeviceUnavailable, errors.NotLoggedIn) as error:
            self._lost(error)
            raise errors.DeviceUnavailable(str(error)) from error

    def require_ready(self) -> None:
        """Raise the error that explains why the store cannot serve now."""
        state = self._state
        if state is State.READY:
            return
        if state in _NOT_LOGGED_IN:
            raise errors.NotLoggedIn(f"not logged in to the token: {self._message}")
        raise errors.DeviceUnavailable(f"token unavailable: {self._message}")

    def probe(self) -> None:
        with self._guard():
            self._token.probe()
        self.last_probe_ok = time.time()

    def _periodic_rescan(self) -> None:
        """Look for changes other tools made: a full rescan reads every object (10,000 reads at 10,000
        secrets), so it runs only when the token's objects are not exactly those this session knows of, and
        on every FULL_RESCAN_EVERY-th look regardless (a token may give a new object a destroyed one's
        handle)."""
        self._looks += 1
        if self._looks < FULL_RESCAN_EVERY:
            with self._write_lock, self._guard():
                if self._token.unchanged():
                    self._metrics.rescans.labels("unchanged").inc()
                    return
        self._looks = 0
        self.rescan()

    def rescan(self) -> int:
        """Re-read the whole token, collect leftovers and bring the index up to date; returns the changes."""
        self.require_ready()
        with self._write_lock, self._guard():
            try:
                snapshot = scan.full_scan(
                    self._token,
                    lambda head: (head.path, head.generation) in self._verified,
                    self.config.tombstone_retention,
                )
            except errors.AgentError:
                self._metrics.rescans.labels("error").inc()
                raise
            changes = self._load(snapshot)
            self._metrics.rescans.labels("ok").inc()
            return changes

    def generate_random(self, length: int) -> bytes:
        """``length`` bytes from the token's random number generator."""
        self.require_ready()
        with self._guard():
            return self._token.generate_random(length)

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        self.require_ready()
        with self._write_lock, self._guard():
            self._token.change_pin(old_pin, new_pin)

    # ------------------------------------------------------------------ capacity

    def capacity(self) -> budget.Capacity:
        """How full the token is: objects as of the last scan and this process's writes since, memory as of
        the last scan."""
        used = self._foreign + self._own
        own_bytes = sum(self._path_bytes.values()) + (self._ledger.size if self._ledger else 0)
        return budget.Capacity(
            max_objects=self.budget.max_objects,
            used_objects=used,
            # Pending garbage is free for a write: one that needs its room destroys it first.
            free_objects=budget.free(self.budget, used - self._collector.pending, self._held()),
            own_objects=self._own,
            own_bytes=own_bytes,
            total_memory=self._memory.total,
            free_memory=self._memory.free,
        )

    def _refresh_memory(self) -> None:
        """Ask the token for its memory (at scans only: on a real token it is a round trip to the card)."""
        try:
            self._memory = self._token.memory()
        except errors.AgentError as error:
            log.debug("token memory unknown", extra={"error": str(error)})
        self._metrics.publish_capacity(self.capacity())

    # ------------------------------------------------------------------ reads

    def read(self, path: str) -> Secret:
        """The live secret at path; NotFound when absent or deleted."""
        self.require_ready()
        for _ in range(3):
            head = self.index.get(path)
            if head is None or head.deleted:
                raise errors.NotFound(f"no secret at {path!r}")
            with self._guard():
                data = self._read_data(head)
                if data is not None:
                    return Secret(head, data)
                # The record is gone or does not verify: confirm the token is there, then re-read it all.
                self._token.probe()
                if self.index.get(path) is head:
                    self.rescan()
        raise errors.Corrupt(f"secret {path!r} does not verify on the token")

    def _read_data(self, head: layout.Head) -> dict[str, bytes] | None:
        generation, handle = self._records.get(head.path, ("", None))
        if handle is None or generation != head.generation:
            return None
        kept = self._values.get(head.path, generation)
        if kept is not None:
            return kept
        data = self._read_record(head, handle)
        if data is not None:
            self._values.put(head.path, generation, data)
        return data

    def _read_record(self, head: layout.Head, handle: token.Handle) -> dict[str, bytes] | None:
        try:
            decoded = codec.decode_record(
                layout.record_label(head.path, head.generation), self._token.read_value(handle)
            )
        except (token.StaleHandle, ValueError):
            return None
        if (head.path, head.generation) in self._verified:
            body = decoded.body
            if body is None:
                body = scan.read_chunked(
                    self._token, layout.record_label(head.path, head.generation), head.chunks, self._chunks
                )
            try:
                return None if body is None else codec.decode_body(head, body)
            except ValueError:
                return None
        return scan.verified_data(self._token, head, decoded.body, self._chunks)

    # ------------------------------------------------------------------ other applications' objects

    def foreign_objects(self, application: str) -> list[token.ForeignObject]:
        """Every data object whose CKA_APPLICATION is exactly application, read in full; never ours."""
        if application in _OURS:
            raise errors.InvalidInput(f"{application!r} names this store's own objects")
        self.require_ready()
        with self._write_lock, self._guard():
            return [self._token.read_foreign(handle) for handle in self._token.find(application)]

    def destroy_foreign(self, obj: token.ForeignObject) -> None:
        """Destroy one object foreign_objects returned (one already gone counts as destroyed)."""
        self.require_ready()
        with self._writing():
            with contextlib.suppress(token.StaleHandle):
                self._token.destroy(obj.handle)
            self._foreign = max(0, self._foreign - 1)
            self._metrics.publish_capacity(self.capacity())

    # ------------------------------------------------------------------ writes

    def _next_version(self, path: str, expected: int | None, version: int) -> tuple[layout.Head | None, int]:
        current = self.index.get(path)
        current_version = current.version if current else 0
        if expected is not None and expected != current_version:
            raise errors.Conflict(
                f"{path!r} is at version {current_version}, not the expected version {expected}"
            )
        if version:
            if version <= current_version:
                raise errors.Conflict(
                    f"version {version} of {path!r} does not exceed the current {current_version}"
                )
            return current, version
        return current, current_version + 1

    def write(
        self,
        path: str,
        data: Mapping[str, bytes],
        meta: layout.Metadata | None,
        expected: int | None = None,
        version: int = 0,
        writer: str = "",
    ) -> layout.Head:
        """Replace the secret at path (crash-safe); meta None keeps the current metadata."""
        self.require_ready()
        with self._writing():
            current, new_version = self._next_version(path, expected, version)
            meta = self._metadata_for(current, meta)
            return self._put(path, dict(data), meta, new_version, writer)

    def delete(
        self, path: str, key: str = "", expected: int | None = None, version: int = 0, writer: str = ""
    ) -> layout.Head:
        """Tombstone the secret at path, or write a version without key.

        With an explicit version (mirroring) a tombstone is written even where the path is unknown,
        so a device that missed the delete cannot bring the secret back.
        """
        self.require_ready()
        with self._writing():
            current, new_version = self._next_version(path, expected, version)
            live = current is not None and not current.deleted
            if not live and (key or not version):
                raise errors.NotFound(f"no secret at {path!r}")
            if key:
                assert current is not None
                if key not in current.keys:
                    raise errors.NotFound(f"secret {path!r} has no key {key!r}")
                if len(current.keys) > 1:
                    data = self._read_data(current)
                    if data is None:
                        raise errors.Corrupt(f"secret {path!r} does not verify on the token")
                    del data[key]
                    return self._put(path, data, current.metadata, new_version, writer)
            tomb = layout.Head(
                path=path,
                version=new_version,
                generation=layout.new_generation(),
                keys=(),
                checksum="",
                deleted=True,
                metadata=layout.Metadata(),
                writer=writer or self.config.device_name,
                time=times.now(),
            )
            self._rewrite_ledger(tomb, self._path_objects.get(path, []))
            return tomb

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock for one write, with the collector held off while writes keep coming."""
        self._collector.touch()
        try:
            with self._write_lock, self._guard():
                yield
        finally:
            self._collector.touch()

    def _metadata_for(self, current: layout.Head | None, meta: layout.Metadata | None) -> layout.Metadata:
        if meta is None:
            meta = current.metadata if current else layout.Metadata()
        if not meta.created_at:
            kept = current.metadata.created_at if current and not current.deleted else ""
            meta = dataclasses.replace(meta, created_at=kept or times.now())
        return meta

    def _held(self) -> int:
        return 0 if self._ledger else budget.LEDGER_RESERVE

    def _check_budget(self, create: int, destroy: int, what: str, held: int | None = None) -> None:
        """budget.check over everything on the token, pending garbage included; when only garbage holds
        the room a write needs, that garbage is destroyed now, on the write path (one object at a time)."""
        while True:
            used = self._foreign + self._own
            try:
                budget.check(self.budget, used, self._held() if held is None else held, create, destroy, what)
                return
            except errors.TokenFull:
                if not self._collector.collect_one():
                    raise

    def _discard(self, handles: list[token.Handle]) -> None:
        """Hand superseded objects to the collector (they stay counted until destroyed)."""
        self._collector.add(handles)
        try:
            while self._collector.pending > self.config.collect_backlog:
                self._collector.collect_one()
        except errors.AgentError as error:
            # The write itself is done and must not fail for this; the probe notices a lost token.
            log.warning("backlog of superseded objects not collected", extra={"error": str(error)})

    def _collect_step(self) -> None:
        """One background step: destroy one superseded object, unless a write came in meanwhile."""
        with self._write_lock, self._guard():
            if self._state is not State.READY:
                self._collector.clear()
            elif self._collector.quiet():
                self._collector.collect_one()
                self._metrics.publish_capacity(self.capacity())

    def collect(self) -> int:
        """Destroy every pending superseded object now; returns how many were pending."""
        with self._write_lock, self._guard():
            pending = self._collector.pending
            while self._collector.collect_one():
                pass
            self._metrics.publish_capacity(self.capacity())
            return pending

    def garbage_pending(self) -> int:
        """Superseded objects still on the token, waiting for the collector."""
        return self._collector.pending

    def _put(
        self, path: str, data: dict[str, bytes], meta: layout.Metadata, version: int, writer: str
    ) -> layout.Head:
        """New record (chunks first), then the old generation handed to the collector: a crash leaves the
        old or the new, and the index serves only the new from the moment it exists."""
        planned = layout.Head(
            path=path,
            version=version,
            generation=layout.new_generation(),
            keys=tuple(sorted(data)),
            checksum=checksum.checksum(data),
            deleted=False,
            metadata=meta,
            writer=writer or self.config.device_name,
            time=times.now(),
        )
        try:
            head, objects, size = codec.plan_record(planned, data, self.budget.max_object_size)
        except codec.TooLarge as error:
            raise errors.InvalidInput(str(error)) from error
        old = self._path_objects.get(path, [])
        self._check_budget(len(objects), len(old), f"writing {path!r}")
        created = self._create(objects, layout.APPLICATION_RECORD)
        self._forget_chunks(self.index.get(path))
        self._chunks.update(zip((label for label, _ in objects[:-1]), created[:-1], strict=True))
        self._records[path] = (head.generation, created[-1])
        self._values.drop(path)
        self._path_objects[path] = created
        self._path_bytes[path] = size
        self._verified.add((path, head.generation))
        self.index.put(head)
        self._metrics.index_size.set(len(self.index))
        self._discard(old)
        self._metrics.publish_capacity(self.capacity())
        return head

    def _rewrite_ledger(self, tomb: layout.Head | None, buried: list[token.Handle]) -> None:
        """A new ledger with tomb (and without tombstones that expired or were overwritten), then the old
        ledger and buried (the records tomb deletes) handed to the collector; no ledger at all when
        nothing is left."""
        now = datetime.datetime.now(datetime.UTC)
        keep = {
            old.path: old
            for old in (self._ledger.ledger.tombstones if self._ledger else ())
            if _still_current(self.index.get(old.path), old)
            and not layout.tombstone_expired(old, now, self.config.tombstone_retention)
        }
        if tomb is not None:
            keep[tomb.path] = tomb
        old_objects = list(self._ledger.objects) if self._ledger else []
        state: scan.LedgerState | None = None
        if keep:
            sequence = self._ledger.ledger.sequence + 1 if self._ledger else 1
            ledger = layout.Ledger(
                layout.new_generation(), sequence, tuple(keep[path] for path in sorted(keep))
            )
            stored, objects = codec.plan_ledger(ledger, self.budget.max_object_size)
            what = f"deleting {tomb.path!r}" if tomb else "compacting the tombstone ledger"
            # The ledger's own held object is what it takes now: nothing else is held back from it.
            self._check_budget(len(objects), len(old_objects) + len(buried), what, held=0)
            created = self._create(objects, layout.APPLICATION_LEDGER)
            state = scan.LedgerState(stored, tuple(created), sum(len(value) for _, value in objects))
        self._ledger = state
        if tomb is not None:
            self._forget_chunks(self.index.get(tomb.path))
            self.index.put(tomb)
            self._records.pop(tomb.path, None)
            self._values.drop(tomb.path)
            self._path_objects.pop(tomb.path, None)
            self._path_bytes.pop(tomb.path, None)
            self._metrics.index_size.set(len(self.index))
        self._discard(old_objects + buried)
        self._metrics.publish_capacity(self.capacity())

    def _create(self, objects: list[tuple[str, bytes]], last_application: str) -> list[token.Handle]:
        """Create objects in order (all but the last are chunks); on failure destroy what was created."""
        created: list[token.Handle] = []
        try:
            for i, (label, value) in enumerate(objects):
                application = last_application if i == len(objects) - 1 else layout.APPLICATION_CHUNK
                created.append(self._token.create(application, label, value))
                self._own += 1
        except errors.AgentError:
            self._destroy(created)
            raise
        except token.StaleHandle as error:
            # The object just created is already unknown to the token: it went away under the call (seen
            # when a token is removed mid-write). Whatever was made is a leftover for the next scan.
            self._destroy(created)
            raise errors.DeviceUnavailable("the token went away while an object was created") from error
        return created

    def _destroy_one(self, handle: token.Handle) -> None:
        """Destroy one object of ours (one already gone counts as destroyed)."""
        with contextlib.suppress(token.StaleHandle):
            self._token.destroy(handle)
        self._own -= 1

    def _destroy(self, handles: list[token.Handle]) -> None:
        """Best effort, for a write that failed half-way: a failure leaves leftovers for the next scan."""
        try:
            for handle in handles:
                with contextlib.suppress(token.StaleHandle):
                    self._token.destroy(handle)
                self._own -= 1
        except errors.AgentError as error:
            log.warning("old objects left for the next scan", extra={"error": str(error)})

    def _forget_chunks(self, head: layout.Head | None) -> None:
        if head is not None and head.chunks:
            for label in layout.chunk_labels(layout.record_label(head.path, head.generation), head.chunks):
                self._chunks.pop(label, None)


def _still_current(current: layout.Head | None, tomb: layout.Head) -> bool:
    """True while tomb is what the index serves for its path (not overwritten, not dropped)."""
    return current is not None and current.deleted and current.rank() == tomb.rank()
