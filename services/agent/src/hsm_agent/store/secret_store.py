"""The secret store: crash-safe writes, verified reads and the connection to the token, over one index."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Iterator, Mapping

from hsm_agent import errors, metrics
from hsm_common import checksum, constants

from . import index, layout, pin, scan, token

log = logging.getLogger(__name__)


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
    max_object_size: int = 65536
    """Largest value stored in one object; bigger values are chunked."""
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


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DISCONNECTED = "disconnected"
    NO_PIN = "no-pin"
    WRONG_PIN = "wrong-pin"
    LOCKED = "locked"
    REFUSED = "refused"


_NOT_LOGGED_IN = {State.NO_PIN, State.WRONG_PIN, State.LOCKED, State.REFUSED}


@dataclasses.dataclass(frozen=True)
class Secret:
    head: layout.Head
    data: dict[str, bytes]


class SecretStore:
    """One token's secrets. Reads run concurrently; writes, scans and reconnects run one at a time."""

    def __init__(self, config: StoreConfig, meters: metrics.Metrics) -> None:
        self.config = config
        self.index = index.Index()
        self.info: token.TokenInfo | None = None
        self.login_attempts = 0
        self.last_probe_ok: float | None = None
        self._metrics = meters
        self._token = token.Token(
            config.library_path, config.token_label, config.slot_id, meters.observe_pkcs11, config.serial
        )
        self._pin = pin.PinFile(config.pin_file)
        # Serialises writes, deletes, scans and reconnects: a version is decided from the index and must
        # not change until its head is on the token. Reads only look up the dicts below (atomic in CPython).
        self._write_lock = threading.RLock()
        self._values: dict[str, token.Handle] = {}
        self._heads: dict[str, list[token.Handle]] = {}
        self._verified: set[tuple[str, str]] = set()
        self._state = State.STARTING
        self._message = "starting"
        self._rejected_pin: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

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

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
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
                    self.rescan()
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

    def _connect(self) -> None:
        """Log in unless the PIN was rejected before or the token has another serial."""
        if self._state is State.REFUSED:
            return
        try:
            current = self._pin.read()
        except errors.NotLoggedIn as error:
            self._set_state(State.NO_PIN, str(error))
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
                return
            except errors.NotLoggedIn as error:
                self._rejected_pin = pin.fingerprint(current)
                self._metrics.login_failures.labels("refused").inc()
                self._set_state(State.LOCKED, str(error))
                return
            except errors.DeviceUnavailable as error:
                self._set_state(State.DISCONNECTED, str(error))
                return
            self._rejected_pin = None
            if self.config.serial and info.serial != self.config.serial:
                self._token.close()
                self._set_state(State.REFUSED, f"token serial {info.serial!r} is not {self.config.serial!r}")
                return
            self.info = info
            recovered = self._state is State.DISCONNECTED
            self._load(scan.full_scan(self._token, lambda _: False, self.config.tombstone_retention))
            self.last_probe_ok = time.time()
            self._set_state(State.READY, "logged in, index loaded")
            if recovered:
                self._metrics.recoveries.inc()

    def _load(self, snapshot: scan.Snapshot) -> int:
        self._values = dict(snapshot.values)
        self._heads = {path: list(handles) for path, handles in snapshot.head_handles.items()}
        self._verified = {(head.path, head.generation) for head in snapshot.heads.values()}
        self._metrics.leftovers.inc(snapshot.collected)
        changes = self.index.replace_all(snapshot.heads)
        self._metrics.index_size.set(len(self.index))
        return changes

    def _lost(self, error: errors.AgentError) -> None:
        """Drop the connection after the token failed; the keeper reconnects."""
        with self._write_lock:
            if self._state is State.READY:
                self._set_state(State.DISCONNECTED, str(error))
                self._values, self._heads = {}, {}
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

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        self.require_ready()
        with self._write_lock, self._guard():
            self._token.change_pin(old_pin, new_pin)

    # ------------------------------------------------------------------ reads

    def read(self, path: str) -> Secret:
        """The live secret at path; NotFound when absent or deleted."""
        self.require_ready()
        for _ in range(3):
            head = self.index.get(path)
            if head is None or head.deleted:
                raise errors.NotFound(f"no secret at {path!r}")
            with self._guard():
                data = self._read_values(head)
                if data is not None:
                    return Secret(head, data)
                # A value is gone or does not verify: confirm the token is there, then re-read the path.
                self._token.probe()
                if self.index.get(path) is head:
                    self._rescan_path(path)
        raise errors.Corrupt(f"secret {path!r} does not verify on the token")

    def _read_values(self, head: layout.Head) -> dict[str, bytes] | None:
        values: dict[str, bytes] = {}
        try:
            for label in head.value_labels():
                handle = self._values.get(label)
                if handle is None:
                    return None
                values[label] = self._token.read_value(handle)
        except token.StaleHandle:
            return None
        data = layout.assemble(head, values)
        if (head.path, head.generation) not in self._verified and checksum.checksum(data) != head.checksum:
            return None
        return data

    def _rescan_path(self, path: str) -> None:
        with self._write_lock:
            winner, handles, values = scan.path_scan(self._token, path, self.config.tombstone_retention)
            self._heads[path] = handles
            self._values.update(values)
            if winner is not None:
                self._verified.add((path, winner.generation))
            self.index.replace_path(path, winner)

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
        with self._write_lock, self._guard():
            current, new_version = self._next_version(path, expected, version)
            meta = self._metadata_for(current, meta)
            return self._commit(path, dict(data), meta, new_version, writer, current)

    def delete(
        self, path: str, key: str = "", expected: int | None = None, version: int = 0, writer: str = ""
    ) -> layout.Head:
        """Tombstone the secret at path, or write a version without key.

        With an explicit version (mirroring) a tombstone is written even where the path is unknown,
        so a device that missed the delete cannot bring the secret back.
        """
        self.require_ready()
        with self._write_lock, self._guard():
            current, new_version = self._next_version(path, expected, version)
            live = current is not None and not current.deleted
            if not live and (key or not version):
                raise errors.NotFound(f"no secret at {path!r}")
            meta = current.metadata if current else layout.Metadata()
            if key:
                assert current is not None
                if key not in current.key_names():
                    raise errors.NotFound(f"secret {path!r} has no key {key!r}")
                if len(current.keys) > 1:
                    data = self._read_values(current)
                    if data is None:
                        raise errors.Corrupt(f"secret {path!r} does not verify on the token")
                    del data[key]
                    return self._commit(path, data, meta, new_version, writer, current)
            return self._commit(path, None, meta, new_version, writer, current)

    def _metadata_for(self, current: layout.Head | None, meta: layout.Metadata | None) -> layout.Metadata:
        if meta is None:
            meta = current.metadata if current else layout.Metadata()
        if not meta.created_at:
            kept = current.metadata.created_at if current and not current.deleted else ""
            meta = dataclasses.replace(meta, created_at=kept or layout.now())
        return meta

    def _commit(
        self,
        path: str,
        data: dict[str, bytes] | None,
        meta: layout.Metadata,
        version: int,
        writer: str,
        current: layout.Head | None,
    ) -> layout.Head:
        """Values first, then the new head, then the old objects: a crash leaves the old or the new secret."""
        generation = layout.new_generation()
        layouts, objects = layout.plan_values(path, data or {}, generation, self.config.max_object_size)
        head = layout.Head(
            path=path,
            version=version,
            generation=generation,
            keys=layouts,
            checksum=checksum.checksum(data) if data is not None else "",
            deleted=data is None,
            metadata=meta,
            writer=writer or self.config.device_name,
            time=layout.now(),
        )
        created: list[tuple[str, token.Handle]] = []
        try:
            for label, chunk in objects:
                created.append((label, self._token.create(constants.APPLICATION_VALUE, label, chunk)))
            head_handle = self._token.create(constants.APPLICATION_HEAD, path, layout.encode_head(head))
        except (errors.AgentError, token.StaleHandle):
            self._undo(created)
            raise
        old_heads = self._heads.get(path, [])
        old_labels = set(current.value_labels()) if current else set()
        self._heads[path] = [head_handle]
        self._values.update(created)
        self._verified.add((path, generation))
        self.index.put(head)
        self._metrics.index_size.set(len(self.index))
        self._destroy_old(old_heads, old_labels - set(head.value_labels()))
        return head

    def _undo(self, created: list[tuple[str, token.Handle]]) -> None:
        """Best effort: what is left is an unreferenced value, collected by the next scan."""
        for _, handle in created:
            try:
                self._token.destroy(handle)
            except (errors.AgentError, token.StaleHandle):
                return

    def _destroy_old(self, heads: list[token.Handle], labels: set[str]) -> None:
        """The new head is committed: failures here leave leftovers for the next scan, not errors."""
        try:
            for handle in heads:
                with contextlib.suppress(token.StaleHandle):
                    self._token.destroy(handle)
            for label in sorted(labels):
                handle = self._values.pop(label, None)
                if handle is not None:
                    with contextlib.suppress(token.StaleHandle):
                        self._token.destroy(handle)
        except errors.AgentError as error:
            log.warning("old objects left for the next scan", extra={"error": str(error)})
