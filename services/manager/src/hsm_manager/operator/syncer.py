"""One sync pass of one HSMSecret: ask the agents, decide, write the Secret and the status."""

from __future__ import annotations

import base64
import datetime
import hmac
import logging
import time
from collections.abc import Callable

import pydantic

from hsm_common import checksum, constants, models, names
from hsm_manager import kube
from hsm_manager.decide import creation, rollout, secretstatus, sync
from hsm_manager.gateway import endpoints

from . import (
    agentreads,
    devices,
    ledger,
    merging,
    metrics,
    pathindex,
    restarts,
    secretwriter,
    statuspatch,
    watched,
)

log = logging.getLogger(__name__)

RELEASE_RETRY_SECONDS = 10.0
"""A merge whose keys could not be taken out of its Secret on deletion tries again this much later."""
DEVICE_LOOKUP_SECONDS = 1.0
"""Least time between two listings of the HSMDevices by passes that met an unknown device: deleting a device
queues every HSMSecret that named it at once, and one listing answers for all of them."""


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
        self._devices_listed = float("-inf")
        """When a pass last listed the HSMDevices (time.monotonic)."""
        self.paths = pathindex.Paths()
        self._remembered = ledger.Ledger()
        self.hsmsecrets = watched.HSMSecrets()
        self.secrets = watched.ManagedSecrets()
        self._writer = secretwriter.SecretWriter(client, directory, self.secrets, self._remembered, mac_key)

    def intact(self, key: tuple[str, str], secret: kube.Obj) -> bool:
        """True when secret still holds what the last pass of key left in sync: that HSM version, and data
        whose keyed MAC matches its annotation (an edit of either shows; the MAC key is not in reach)."""
        annotations = secret.get("metadata", {}).get("annotations") or {}
        version = self._remembered.in_sync_version(key)
        if version is None or annotations.get(constants.ANNOTATION_HSM_VERSION) != str(version):
            return False
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        expected = annotations.get(constants.ANNOTATION_DATA_MAC, "")
        return hmac.compare_digest(expected, checksum.mac(self._mac_key, creation.ours(data, annotations)))

    def in_sync_at(self, key: tuple[str, str], path: str, version: int) -> bool:
        """True when the last pass of key left its Secret in sync with this version of path."""
        return self._remembered.in_sync_at(key, path, version)

    def unresolved(self) -> list[tuple[str, str]]:
        """HSMSecrets whose device could not be resolved: a new or changed HSMDevice may resolve them."""
        return self._remembered.unresolved()

    def wrote(self, namespace: str, name: str, resource_version: str) -> bool:
        """True when this Secret version is the one the last sync pass wrote (its event needs no pass)."""
        return self._remembered.wrote(namespace, name, resource_version)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what is known about a deleted HSMSecret."""
        self.paths.set(key, None)
        self.hsmsecrets.forget(key)
        self._remembered.forget(key)

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
            return self._client.get(constants.KIND_SECRET, *key)
        except kube.NotFound:
            return None

    def _resolve(self, namespace: str, device: str | None) -> tuple[str, str]:
        """The HSMDevice an HSMSecret means. One the device handlers have not registered yet is looked for on
        the API server: an HSMSecret applied together with its HSMDevice can reach a pass first, and calling
        its spec invalid then would be wrong."""
        try:
            return self._devices.resolve(namespace, device)
        except devices.UnknownDevice:
            now = time.monotonic()
            if now - self._devices_listed < DEVICE_LOOKUP_SECONDS:
                raise
            self._devices_listed = now
            self._devices.learn(self._client.list_custom(constants.KIND_DEVICE))
            return self._devices.resolve(namespace, device)

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
        previous = statuspatch.before(self._remembered, key, obj, verify)
        try:
            spec = models.HSMSecretSpec.model_validate(obj.get("spec") or {})
            paths = spec.effective_paths(namespace, name)
            device = self._resolve(namespace, spec.device)
        except (pydantic.ValidationError, names.InvalidName, devices.UnknownDevice) as exc:
            self.paths.set(key, None)
            if isinstance(exc, devices.UnknownDevice):
                self._remembered.note_unresolved(key, True)
            message = statuspatch.spec_errors(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
            invalid = secretstatus.invalid(previous, message, generation, now)
            statuspatch.finish(self._client, self._remembered, obj, previous, invalid)
            metrics.SYNC_ERRORS.labels(sync.Reason.INVALID.value).inc()
            return "invalid"
        self.paths.set(key, paths)
        self._remembered.note_unresolved(key, False)
        if not spec.auto_sync:
            return "paused"
        if not merging.hold(self._client, obj, spec.creation_policy):
            metrics.SYNC_ERRORS.labels(sync.Reason.ERROR.value).inc()
            return "error"
        secret_name = spec.effective_secret_name(name)
        wanted = sync.Wanted.of(spec)
        will_write = self._writer.finds_none(key, spec, wanted, verify)
        heard = agentreads.ask(self._directory, spec, paths, device, will_write)
        settled = self._writer.settle(key, obj, spec, wanted, paths, heard, verify)
        decision, synced = settled.decision, settled.synced
        self._remembered.note_not_ours(key, decision.reason == sync.Reason.CONFLICT)
        hsm_mac = checksum.mac_of_checksum(self._mac_key, decision.checksum) if decision.checksum else None
        status = secretstatus.build(
            previous,
            decision,
            hsm_mac=hsm_mac,
            secret_mac=settled.secret_mac,
            secret_ref=models.SecretRef(name=secret_name, namespace=namespace),
            generation=generation,
            synced=synced,
            now=now,
        )
        status = statuspatch.with_sources(
            status, previous, spec, heard.picked, settled.made if synced else None
        )
        if wanted.merge:
            after = self.secrets.get(namespace, secret_name) if synced else settled.current
            status = status.model_copy(update={"owned_keys": merging.owned(after)})
        status = self._rollout(key, obj, spec, previous, status, settled.data_changed, now)
        statuspatch.finish(self._client, self._remembered, obj, previous, status, settled.warned)
        if decision.sync_status == models.SyncStatus.IN_SYNC and decision.version is not None:
            versions = statuspatch.versions_of(paths, decision.version, status)
            self._remembered.note_in_sync(key, decision.version, versions)
        else:
            self._remembered.note_out_of_sync(key)
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

    def _release(self, key: tuple[str, str], obj: kube.Obj) -> str:
        """A deleted HSMSecret: merging.release when it merged; tried again later when that failed."""
        if not merging.holding(obj):
            return "gone"
        try:
            merging.release(self._client, obj, statuspatch.held(obj).secret_ref)
        except kube.KubeError as exc:
            message = f"taking the merged keys out of the Secret failed: {exc}"
            self._client.event(obj, "SyncFailed", message, warning=True)
            metrics.SYNC_ERRORS.labels(sync.Reason.ERROR.value).inc()
            if self._later is not None:
                self._later(key, RELEASE_RETRY_SECONDS)
            return "error"
        return "released"
