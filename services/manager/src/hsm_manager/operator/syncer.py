"""One sync pass of one HSMSecret: ask the agents, decide, write the Secret and the status."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import pydantic

from hsm_common import checksum, constants, models, names
from hsm_manager import kube
from hsm_manager.decide import creation, model, rollout, secretstatus, shape, sources, sync, templates
from hsm_manager.gateway import endpoints, pki
from hsm_manager.gateway import errors as agent_errors

from . import devices, merging, metrics, restarts, secretmanifest, watched

log = logging.getLogger(__name__)

MAC_KEY_SECRET = "hsm-manager-mac-key"  # noqa: S105 - a Secret name
RELEASE_RETRY_SECONDS = 10.0
"""A merge whose keys could not be taken out of its Secret on deletion tries again this much later."""


def ensure_mac_key(client: kube.Kube, namespace: str) -> bytes:
    """The MAC key of this installation (32 random bytes), created once in the operator namespace."""
    data = pki.create_or_get(
        client, namespace, MAC_KEY_SECRET, "Opaque", lambda: {"key": secrets.token_bytes(32)}
    )
    return data["key"]


@dataclasses.dataclass
class Paths:
    """path → HSMSecrets reading it (hsmPath or any dataFrom path), so a WatchSecrets event finds what to
    sync."""

    # Guards _by_path and _of: updated by sync workers, read by watch threads.
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _by_path: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    _of: dict[tuple[str, str], tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def set(self, key: tuple[str, str], paths: list[str] | None) -> None:
        """key now reads paths (None: nothing)."""
        with self._lock:
            for old in self._of.pop(key, ()):
                self._by_path.get(old, set()).discard(key)
            for path in paths or ():
                self._of[key] = (*self._of.get(key, ()), path)
                self._by_path.setdefault(path, set()).add(key)

    def readers(self, path: str) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._by_path.get(path, ()))

    def tracked(self) -> list[tuple[str, str]]:
        """Every HSMSecret whose path is known."""
        with self._lock:
            return sorted(self._of)


def _spec_errors(error: pydantic.ValidationError) -> str:
    """The spec's faults in a line (the spec holds no secret values; inputs are left out all the same)."""
    faults = []
    for fault in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in ("spec", *fault["loc"]))
        faults.append(f"{where}: {fault['msg'].removeprefix('Value error, ')}")
    return "; ".join(faults)


class ReadFailed(Exception):
    """The agent chosen to read from failed or returned data that does not match its checksum."""


class Syncer:
    """Runs sync passes; shared by the queue workers."""

    def __init__(
        self,
        client: kube.Kube,
        directory: endpoints.Directory,
        known: devices.Devices,
        mac_key: bytes,
        later: Callable[[tuple[str, str], float], None] | None = None,
    ) -> None:
        """later(key, seconds): queue a pass of key then (a rollout restart waiting for its interval)."""
        self._client = client
        self._later = later
        self._directory = directory
        self._devices = known
        self._mac_key = mac_key
        self.paths = Paths()
        # Guards _written and _statuses (sync workers and the Secret event handler).
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], str] = {}
        self._statuses: dict[tuple[str, str], str] = {}
        self._unresolved: set[tuple[str, str]] = set()
        self._in_sync: dict[tuple[str, str], int] = {}
        self._in_sync_paths: dict[tuple[str, str], dict[str, int]] = {}
        """The version of each path the last pass of key left its Secret in sync with."""
        self._patched: dict[tuple[str, str], tuple[str | None, models.HSMSecretStatus]] = {}
        """The last status this process patched into each HSMSecret (uid, status)."""
        self._not_ours: set[tuple[str, str]] = set()
        """HSMSecrets whose Secret name is taken by a Secret that is not theirs: read it on every pass."""
        self.hsmsecrets = watched.HSMSecrets()
        self.secrets = watched.ManagedSecrets()
        for status in models.SyncStatus:
            metrics.SECRETS_BY_STATUS.labels(status.value)  # every status shows, at 0 until counted

    def intact(self, key: tuple[str, str], secret: kube.Obj) -> bool:
        """True when secret still holds what the last pass of key left in sync: that HSM version, and data
        whose keyed MAC matches its annotation (an edit of either shows; the MAC key is not in reach)."""
        annotations = secret.get("metadata", {}).get("annotations") or {}
        with self._lock:
            version = self._in_sync.get(key)
        if version is None or annotations.get(constants.ANNOTATION_HSM_VERSION) != str(version):
            return False
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        expected = annotations.get(constants.ANNOTATION_DATA_MAC, "")
        return hmac.compare_digest(expected, checksum.mac(self._mac_key, creation.ours(data, annotations)))

    def in_sync_at(self, key: tuple[str, str], path: str, version: int) -> bool:
        """True when the last pass of key left its Secret in sync with this version of path."""
        with self._lock:
            return self._in_sync_paths.get(key, {}).get(path) == version

    def unresolved(self) -> list[tuple[str, str]]:
        """HSMSecrets whose device could not be resolved: a new or changed HSMDevice may resolve them."""
        with self._lock:
            return sorted(self._unresolved)

    def wrote(self, namespace: str, name: str, resource_version: str) -> bool:
        """True when this Secret version is the one the last sync pass wrote (its event needs no pass)."""
        with self._lock:
            return self._written.get((namespace, name)) == resource_version

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what is known about a deleted HSMSecret."""
        self.paths.set(key, None)
        self.hsmsecrets.forget(key)
        with self._lock:
            self._unresolved.discard(key)
            self._in_sync.pop(key, None)
            self._in_sync_paths.pop(key, None)
            self._patched.pop(key, None)
            self._not_ours.discard(key)
            self._count_status(key, None)

    def _count_status(self, key: tuple[str, str], status: str | None) -> None:
        """Record key's status (None: forgotten) and move the by-status gauge by one, never recounting
        every HSMSecret (at thousands, a recount per pass cost more than the pass). Call with _lock held."""
        old = self._statuses.pop(key, None)
        if status is not None:
            self._statuses[key] = status
        if old != status:
            if old is not None:
                metrics.SECRETS_BY_STATUS.labels(old).dec()
            if status is not None:
                metrics.SECRETS_BY_STATUS.labels(status).inc()

    def _observe(self, endpoint: endpoints.AgentEndpoint, path: str) -> sync.Observation:
        try:
            return sync.Observation(endpoint.name, self._directory.client(endpoint).state(path))
        except agent_errors.AgentCallError as error:
            return sync.Observation(endpoint.name, error=error.summary)

    def _read(self, endpoint: endpoints.AgentEndpoint, path: str) -> tuple[dict[str, bytes], int]:
        try:
            secret = self._directory.client(endpoint).read(path)
        except agent_errors.AgentCallError as error:
            raise ReadFailed(f"reading from {endpoint.name} failed: {error.summary}") from None
        data = dict(secret.data)
        if secret.checksum and checksum.checksum(data) != secret.checksum:
            raise ReadFailed(f"data read from {endpoint.name} does not match its checksum")
        return data, secret.version

    def _write_secret(
        self,
        obj: kube.Obj,
        spec: models.HSMSecretSpec,
        wanted: sync.Wanted,
        made: secretmanifest.Written,
        current: watched.SecretSeen | None,
        recreate: str | None,
    ) -> kube.Obj:
        if wanted.merge and current is not None:
            patch = secretmanifest.merge_patch(obj, wanted, made, self._mac_key, current)
            name = spec.effective_secret_name(obj["metadata"]["name"])
            return self._client.patch("Secret", obj["metadata"]["namespace"], name, patch)
        manifest = secretmanifest.build(obj, spec, wanted, made, self._mac_key)
        if current is None:
            return self._client.create(manifest)
        if recreate is not None:
            # Kubernetes will not replace it (sync.recreate_reason): delete this incarnation, then create.
            # The new data is rendered by now, so a failing template never gets here to delete anything.
            meta = manifest["metadata"]
            self._client.delete("Secret", meta["namespace"], meta["name"], uid=current.uid)
            return self._client.create(manifest)
        manifest["metadata"]["resourceVersion"] = current.resource_version
        return self._client.replace(manifest)

    def _made(
        self, spec: models.HSMSecretSpec, source: endpoints.AgentEndpoint, path: str
    ) -> secretmanifest.Written:
        """The HSM copy on source, shaped by spec; ReadFailed, shape.KeyMissing or TemplateFailed."""
        data, version = self._read(source, path)
        return secretmanifest.Written(shape.secret_data(spec, data), version, checksum.checksum(data))

    def _made_from(
        self, spec: models.HSMSecretSpec, found: list[endpoints.AgentEndpoint], picked: list[sources.Picked]
    ) -> secretmanifest.Written:
        """Every source's newest copy read and merged in order, shaped by spec; as _made."""
        read = []
        for chosen in picked:
            data, version = self._read(next(e for e in found if e.name == chosen.agent), chosen.path)
            # What was read binds the MAC, even if a source moved since it was observed.
            read.append((chosen, data, model.PathState(version=version, checksum=checksum.checksum(data))))
        merged, conflicts = sources.merge([(chosen.path, data) for chosen, data, _ in read])
        now = [dataclasses.replace(chosen, state=state) for chosen, _, state in read]
        whole = sources.combined(now)
        return secretmanifest.Written(
            shape.secret_data(spec, merged),
            whole.version,
            whole.checksum,
            tuple(sources.versions(now)),
            tuple(conflicts),
        )

    def _fetch_secret(self, namespace: str, name: str) -> watched.SecretSeen | None:
        """The API server's copy of a Secret; a managed one also updates what the watch showed."""
        try:
            found = self._client.get("Secret", namespace, name)
        except kube.NotFound:
            return None
        seen = watched.SecretSeen.of(found)
        if constants.LABEL_SECRET in seen.labels:
            self.secrets.saw(found)
        return seen

    def run(self, key: tuple[str, str], verify: bool = False) -> str:
        """One pass for key; the outcome lands in status, events and metrics, and is returned.

        verify: read the HSMSecret and its Secret from the API server rather than from the watches.
        """
        started = time.monotonic()
        result = "error"
        try:
            result = self._pass(key, verify)
        finally:
            elapsed = time.monotonic() - started
            metrics.SYNC_CALLS.labels(result).inc()
            metrics.SYNC_DURATION.observe(elapsed)
            # Passes that changed nothing are the steady state: only the others are worth a line.
            if result != "unchanged":
                extra = {
                    "namespace": key[0],
                    "hsmsecret": key[1],
                    "result": result,
                    "seconds": round(elapsed, 4),
                }
                log.info("sync pass", extra=extra)
        return result

    def _hsmsecret(self, key: tuple[str, str], verify: bool) -> kube.Obj | None:
        obj = None if verify else self.hsmsecrets.get(key)
        if obj is not None:
            return obj
        try:
            return self._client.get_custom(constants.KIND_SECRET, *key)
        except kube.NotFound:
            return None

    def _previous(self, key: tuple[str, str], obj: kube.Obj, verify: bool) -> models.HSMSecretStatus:
        """The status the HSMSecret holds: the last one this process patched, unless the body is fresh
        from the API server (a watched body may predate that patch)."""
        uid = obj["metadata"].get("uid")
        with self._lock:
            patched = self._patched.get(key)
        if patched is not None and patched[0] == uid and not verify:
            return patched[1]
        return _status(obj)

    def _pass(self, key: tuple[str, str], verify: bool) -> str:
        namespace, name = key
        obj = self._hsmsecret(key, verify)
        if obj is None:
            self.forget(key)
            return "gone"
        if obj["metadata"].get("deletionTimestamp"):
            return self._release(key, obj)
        now = datetime.datetime.now(datetime.UTC)
        generation = obj["metadata"].get("generation")
        previous = self._previous(key, obj, verify)
        try:
            spec = models.HSMSecretSpec.model_validate(obj.get("spec") or {})
            paths = spec.effective_paths(namespace, name)
            device_ns, device = self._devices.resolve(namespace, spec.device)
        except (pydantic.ValidationError, names.InvalidName, devices.UnknownDevice) as exc:
            self.paths.set(key, None)
            if isinstance(exc, devices.UnknownDevice):
                with self._lock:
                    self._unresolved.add(key)
            message = _spec_errors(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
            self._finish(obj, previous, secretstatus.invalid(previous, message, generation, now))
            metrics.SYNC_ERRORS.labels(sync.Reason.INVALID.value).inc()
            return "invalid"
        self.paths.set(key, paths)
        with self._lock:
            self._unresolved.discard(key)
        if not spec.auto_sync:
            return "paused"
        if not merging.hold(self._client, obj, spec.creation_policy):
            metrics.SYNC_ERRORS.labels(sync.Reason.ERROR.value).inc()
            return "error"
        found = self._directory.endpoints(device_ns, device)
        picked: list[sources.Picked] | sync.Decision | None = None
        if spec.data_from is None:
            observations = [self._observe(e, paths[0]) for e in found]
        else:
            picked = sources.pick([(p, [self._observe(e, p) for e in found]) for p in paths])
            # The sources decide as one copy; the write reads each from the agent pick chose.
            observations = (
                [sync.Observation(_SOURCES, sources.combined(picked))] if isinstance(picked, list) else []
            )
        secret_name = spec.effective_secret_name(name)
        wanted = sync.Wanted.of(spec)
        with self._lock:
            fetch = verify or key in self._not_ours
        current = None if fetch else self.secrets.get(namespace, secret_name)
        if current is None and (fetch or wanted.merge):
            # A Secret not merged into yet names no HSMSecret, so no watch shows it: only the API knows.
            fetch, current = True, self._fetch_secret(namespace, secret_name)
        owner = obj["metadata"]["uid"]
        made: secretmanifest.Written | None = None
        warned = False
        data_changed = False
        # At most twice: a second time on the API server's copy when a write found the watched one stale.
        for fresh in (fetch, True):
            state = (
                current.state(owner, name, spec.creation_policy)
                if current
                else sync.SecretState(exists=False)
            )
            decision = (
                picked
                if isinstance(picked, sync.Decision)
                else sync.decide(
                    observations, state, wanted, spec.deletion_policy, secret_name, self._mac_key
                )
            )
            synced = False
            secret_mac = checksum.mac_of_checksum(self._mac_key, state.data_checksum) if current else None
            if decision.action == sync.Action.WRITE and decision.source:
                try:
                    if made is None and isinstance(picked, list):
                        made = self._made_from(spec, found, picked)
                    elif made is None:
                        source = next(e for e in found if e.name == decision.source)
                        made = self._made(spec, source, paths[0])
                    recreate = sync.recreate_reason(state, wanted, checksum.checksum(made.data))
                    written = self._write_secret(obj, spec, wanted, made, current, recreate)
                except (ReadFailed, shape.KeyMissing, templates.TemplateFailed, kube.KubeError) as exc:
                    if isinstance(exc, kube.Conflict) and not fresh:
                        # The watch had not yet shown this Secret as it is: decide again on the API's copy.
                        current = self._fetch_secret(namespace, secret_name)
                        continue
                    decision = dataclasses.replace(
                        decision,
                        sync_status=models.SyncStatus.ERROR,
                        reason=_FAILURE_REASONS.get(type(exc), sync.Reason.ERROR),
                        message=_kept(exc) if current is not None else str(exc),
                    )
                    self._client.event(obj, "SyncFailed", decision.message, warning=True)
                    warned = True
                else:
                    self.secrets.saw(written)
                    with self._lock:
                        self._written[(namespace, secret_name)] = written["metadata"]["resourceVersion"]
                    synced = True
                    data_changed = current is not None and state.data_checksum != checksum.checksum(made.data)
                    secret_mac = checksum.mac_of_checksum(self._mac_key, checksum.checksum(made.data))
                    decision = dataclasses.replace(decision, version=made.version)
                    if recreate is not None:
                        recreated = f"Secret {secret_name} was deleted and created again: {recreate}"
                        decision = dataclasses.replace(decision, message=f"{decision.message}; {recreated}")
                        self._client.event(
                            obj, "SecretRecreated", f"{recreated}; it holds version {made.version}"
                        )
                    elif current is not None:
                        # Only changes get an Event: one per created Secret would be a third of the
                        # API writes of a start with thousands of HSMSecrets, and the status says it.
                        self._client.event(
                            obj, "SecretUpdated", f"Secret {secret_name} now holds version {made.version}"
                        )
            elif decision.action == sync.Action.DELETE and current is not None and wanted.merge:
                merging.take_out(self._client, obj, secret_name)
                self.secrets.gone(namespace, secret_name)  # it names no HSMSecret any more
                synced, secret_mac = True, checksum.mac_of_checksum(self._mac_key, checksum.checksum({}))
            elif decision.action == sync.Action.DELETE and current is not None:
                self._client.delete("Secret", namespace, secret_name, uid=current.uid)
                self.secrets.gone(namespace, secret_name)
                synced, secret_mac = True, None
                self._client.event(obj, "SecretDeleted", decision.message)
            break
        with self._lock:
            if decision.reason == sync.Reason.CONFLICT:
                self._not_ours.add(key)
            else:
                self._not_ours.discard(key)
        hsm_mac = checksum.mac_of_checksum(self._mac_key, decision.checksum) if decision.checksum else None
        status = secretstatus.build(
            previous,
            decision,
            hsm_mac=hsm_mac,
            secret_mac=secret_mac,
            secret_ref=models.SecretRef(name=secret_name, namespace=namespace),
            generation=generation,
            synced=synced,
            now=now,
        )
        status = _with_sources(status, previous, spec, picked, made if synced else None)
        if wanted.merge:
            after = self.secrets.get(namespace, secret_name) if synced else current
            status = status.model_copy(update={"owned_keys": merging.owned(after)})
        status = self._rollout(key, obj, spec, previous, status, data_changed, now)
        self._finish(obj, previous, status, warned)
        with self._lock:
            if decision.sync_status == models.SyncStatus.IN_SYNC and decision.version is not None:
                self._in_sync[key] = decision.version
                self._in_sync_paths[key] = _versions_of(paths, decision.version, status)
            else:
                self._in_sync.pop(key, None)
                self._in_sync_paths.pop(key, None)
        if decision.sync_status == models.SyncStatus.ERROR:
            metrics.SYNC_ERRORS.labels(decision.reason.value).inc()
            return "error"
        return "written" if synced else "unchanged"

    def _rollout(
        self,
        key: tuple[str, str],
        obj: kube.Obj,
        spec: models.HSMSecretSpec,
        previous: models.HSMSecretStatus,
        status: models.HSMSecretStatus,
        data_changed: bool,
        now: datetime.datetime,
    ) -> models.HSMSecretStatus:
        """Restart the targets when the data changed (or a held-back restart is due); status with it."""
        step = rollout.plan(spec, previous, data_changed, now)
        outcomes = (
            restarts.restart(self._client, obj, spec.rollout_restart_targets, now) if step.restart else []
        )
        if step.wait is not None and self._later is not None:
            self._later(key, step.wait)
        return rollout.status(status, step, outcomes, obj["metadata"].get("generation"), now)

    def _finish(
        self,
        obj: kube.Obj,
        previous: models.HSMSecretStatus,
        status: models.HSMSecretStatus,
        warned: bool = False,
    ) -> None:
        """Count and patch status (when it changed); a turn to Error is a Warning event, unless the pass
        already warned (warned) with the same words."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            self._count_status(key, (status.sync_status or models.SyncStatus.PENDING).value)
        if status == previous:
            return
        turned = previous.sync_status != status.sync_status and status.sync_status == models.SyncStatus.ERROR
        if turned and not warned:
            self._client.event(obj, "SyncFailed", status.last_error or "sync failed", warning=True)
        wire: dict[str, Any] = status.to_wire()
        # Fields the new status leaves out must be cleared explicitly in a merge patch.
        for field in ("lastError", "rolloutRestartPending", "sources", "keyConflicts", "ownedKeys"):
            wire.setdefault(field, None)
        try:
            self._client.patch_status(constants.KIND_SECRET, meta["namespace"], meta["name"], wire)
        except kube.NotFound:
            return
        with self._lock:
            self._patched[key] = (meta.get("uid"), status)

    def _release(self, key: tuple[str, str], obj: kube.Obj) -> str:
        """A deleted HSMSecret: merging.release when it merged; tried again later when that failed."""
        if not merging.holding(obj):
            return "gone"
        try:
            merging.release(self._client, obj, _status(obj).secret_ref)
        except kube.KubeError as exc:
            message = f"taking the merged keys out of the Secret failed: {exc}"
            self._client.event(obj, "SyncFailed", message, warning=True)
            metrics.SYNC_ERRORS.labels(sync.Reason.ERROR.value).inc()
            if self._later is not None:
                self._later(key, RELEASE_RETRY_SECONDS)
            return "error"
        return "released"


_SOURCES = "dataFrom"
"""The name the merged sources decide under; never an agent's, never read from."""


def _with_sources(
    status: models.HSMSecretStatus,
    previous: models.HSMSecretStatus,
    spec: models.HSMSecretSpec,
    picked: list[sources.Picked] | sync.Decision | None,
    made: secretmanifest.Written | None,
) -> models.HSMSecretStatus:
    """status with dataFrom's sources and key conflicts: as written, as found in sync, or as before."""
    if spec.data_from is None:
        return status.model_copy(update={"sources": None, "key_conflicts": None})
    found: list[models.SourceVersion] | None
    if made is not None:
        found, conflicts = list(made.sources), list(made.conflicts) or None
    elif isinstance(picked, list) and status.sync_status == models.SyncStatus.IN_SYNC:
        found, conflicts = sources.versions(picked), previous.key_conflicts
    else:
        found, conflicts = previous.sources, previous.key_conflicts
    return status.model_copy(update={"sources": found, "key_conflicts": conflicts})


def _versions_of(paths: list[str], version: int, status: models.HSMSecretStatus) -> dict[str, int]:
    """The version of each path the Secret is in sync with: each source's, or the one path's."""
    if status.sources is not None:
        return {s.path: s.version for s in status.sources}
    return {paths[0]: version}


_FAILURE_REASONS: dict[type[Exception], sync.Reason] = {
    shape.KeyMissing: sync.Reason.KEY_NOT_FOUND,
    templates.TemplateFailed: sync.Reason.TEMPLATE_FAILED,
}


def _kept(exc: Exception) -> str:
    """A failed write's message, saying what a shaping failure leaves in place."""
    if isinstance(exc, (shape.KeyMissing, templates.TemplateFailed)):
        return f"{exc}; the Secret is kept as it was"
    return str(exc)


def _status(obj: kube.Obj) -> models.HSMSecretStatus:
    raw = {k: v for k, v in (obj.get("status") or {}).items() if k in _STATUS_FIELDS}
    try:
        return models.HSMSecretStatus.model_validate(raw)
    except pydantic.ValidationError:
        return models.HSMSecretStatus()


_STATUS_FIELDS = {f.alias or n for n, f in models.HSMSecretStatus.model_fields.items()}
