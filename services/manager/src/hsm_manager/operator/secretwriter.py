"""The Secret side of a pass: which copy of the Secret to decide on, and the write, recreate, take-out or
delete the decision calls for."""

from __future__ import annotations

import dataclasses

from hsm_common import checksum, constants, models
from hsm_manager import kube
from hsm_manager.decide import shape, sync, templates
from hsm_manager.gateway import endpoints

from . import agentreads, ledger, merging, secretmanifest, watched


@dataclasses.dataclass(frozen=True)
class Settled:
    """What a pass decided for the Secret and did to it, for the status it writes."""

    decision: sync.Decision
    current: watched.SecretSeen | None
    """The Secret as the decision found it."""
    made: secretmanifest.Written | None
    """The HSM copy as shaped for the Secret, when it was read."""
    synced: bool
    """The pass wrote, took out of or deleted the Secret."""
    secret_mac: str | None
    """The keyed MAC of the Secret's data as the pass leaves it (None: no Secret)."""
    warned: bool
    """A SyncFailed event went out already."""
    data_changed: bool
    """An existing Secret's data was replaced."""


@dataclasses.dataclass(frozen=True)
class SecretWriter:
    """Writes the Secrets of the passes; shared by the queue workers."""

    client: kube.Kube
    directory: endpoints.Directory
    secrets: watched.ManagedSecrets
    """What the watch shows of the managed Secrets; kept up to date with each write."""
    remembered: ledger.Ledger
    mac_key: bytes

    def fetch(self, namespace: str, name: str) -> watched.SecretSeen | None:
        """The API server's copy of a Secret; a managed one also updates what the watch showed."""
        try:
            found = self.client.get("Secret", namespace, name)
        except kube.NotFound:
            return None
        seen = watched.SecretSeen.of(found)
        if constants.LABEL_SECRET in seen.labels:
            self.secrets.saw(found)
        return seen

    def finds_none(
        self, key: tuple[str, str], spec: models.HSMSecretSpec, wanted: sync.Wanted, verify: bool
    ) -> bool:
        """True when settle will decide on no Secret at all (the watch shows none, and settle would not ask
        the API server for one): any HSM copy found will be written."""
        fetch, current = self._watched(key, spec.effective_secret_name(key[1]), wanted, verify)
        return not fetch and current is None

    def _watched(
        self, key: tuple[str, str], secret_name: str, wanted: sync.Wanted, verify: bool
    ) -> tuple[bool, watched.SecretSeen | None]:
        """Whether settle decides on the API server's copy of the Secret, and the watched copy otherwise."""
        if verify or self.remembered.not_ours(key):
            return True, None
        current = self.secrets.get(key[0], secret_name)
        # A Secret not merged into yet names no HSMSecret, so no watch shows it: only the API knows.
        return current is None and wanted.merge, current

    def settle(
        self,
        key: tuple[str, str],
        obj: kube.Obj,
        spec: models.HSMSecretSpec,
        wanted: sync.Wanted,
        paths: list[str],
        heard: agentreads.Heard,
        verify: bool,
    ) -> Settled:
        """Decide on the Secret of key as it is, and act on that decision.

        verify: decide on the API server's copy rather than the watched one.
        """
        namespace, name = key
        secret_name = spec.effective_secret_name(name)
        picked, found = heard.picked, heard.found
        fetch, current = self._watched(key, secret_name, wanted, verify)
        if fetch:
            current = self.fetch(namespace, secret_name)
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
                    heard.observations, state, wanted, spec.deletion_policy, secret_name, self.mac_key
                )
            )
            synced = False
            secret_mac = checksum.mac_of_checksum(self.mac_key, state.data_checksum) if current else None
            if decision.action == sync.Action.WRITE and decision.source:
                try:
                    if made is None and isinstance(picked, list):
                        made = agentreads.made_from(self.directory, spec, found, picked)
                    elif made is None:
                        source = next(e for e in found if e.name == decision.source)
                        copy = heard.read if heard.read and heard.read.version == decision.version else None
                        made = agentreads.made(self.directory, spec, source, paths[0], copy)
                    recreate = sync.recreate_reason(state, wanted, checksum.checksum(made.data))
                    written = self._write(obj, spec, wanted, made, current, recreate)
                except (
                    agentreads.ReadFailed,
                    shape.KeyMissing,
                    templates.TemplateFailed,
                    kube.KubeError,
                ) as exc:
                    if isinstance(exc, kube.Conflict) and not fresh:
                        # The watch had not yet shown this Secret as it is: decide again on the API's copy.
                        current = self.fetch(namespace, secret_name)
                        continue
                    decision = dataclasses.replace(
                        decision,
                        sync_status=models.SyncStatus.ERROR,
                        reason=_FAILURE_REASONS.get(type(exc), sync.Reason.ERROR),
                        message=_kept(exc) if current is not None else str(exc),
                    )
                    self.client.event(obj, "SyncFailed", decision.message, warning=True)
                    warned = True
                else:
                    self.secrets.saw(written)
                    self.remembered.note_written(
                        namespace, secret_name, written["metadata"]["resourceVersion"]
                    )
                    synced = True
                    data_changed = current is not None and state.data_checksum != checksum.checksum(made.data)
                    secret_mac = checksum.mac_of_checksum(self.mac_key, checksum.checksum(made.data))
                    decision = dataclasses.replace(decision, version=made.version)
                    if recreate is not None:
                        recreated = f"Secret {secret_name} was deleted and created again: {recreate}"
                        decision = dataclasses.replace(decision, message=f"{decision.message}; {recreated}")
                        self.client.event(
                            obj, "SecretRecreated", f"{recreated}; it holds version {made.version}"
                        )
                    elif current is not None:
                        # Only changes get an Event: one per created Secret would be a third of the
                        # API writes of a start with thousands of HSMSecrets, and the status says it.
                        self.client.event(
                            obj, "SecretUpdated", f"Secret {secret_name} now holds version {made.version}"
                        )
            elif decision.action == sync.Action.DELETE and current is not None and wanted.merge:
                merging.take_out(self.client, obj, secret_name)
                self.secrets.gone(namespace, secret_name)  # it names no HSMSecret any more
                synced, secret_mac = True, checksum.mac_of_checksum(self.mac_key, checksum.checksum({}))
            elif decision.action == sync.Action.DELETE and current is not None:
                self.client.delete("Secret", namespace, secret_name, uid=current.uid)
                self.secrets.gone(namespace, secret_name)
                synced, secret_mac = True, None
                self.client.event(obj, "SecretDeleted", decision.message)
            break
        return Settled(decision, current, made, synced, secret_mac, warned, data_changed)

    def _write(
        self,
        obj: kube.Obj,
        spec: models.HSMSecretSpec,
        wanted: sync.Wanted,
        made: secretmanifest.Written,
        current: watched.SecretSeen | None,
        recreate: str | None,
    ) -> kube.Obj:
        if wanted.merge and current is not None:
            patch = secretmanifest.merge_patch(obj, wanted, made, self.mac_key, current)
            name = spec.effective_secret_name(obj["metadata"]["name"])
            return self.client.patch("Secret", obj["metadata"]["namespace"], name, patch)
        manifest = secretmanifest.build(obj, spec, wanted, made, self.mac_key)
        if current is None:
            return self.client.create(manifest)
        if recreate is not None:
            # Kubernetes will not replace it (sync.recreate_reason): delete this incarnation, then create.
            # The new data is rendered by now, so a failing template never gets here to delete anything.
            meta = manifest["metadata"]
            self.client.delete("Secret", meta["namespace"], meta["name"], uid=current.uid)
            return self.client.create(manifest)
        manifest["metadata"]["resourceVersion"] = current.resource_version
        return self.client.replace(manifest)


_FAILURE_REASONS: dict[type[Exception], sync.Reason] = {
    shape.KeyMissing: sync.Reason.KEY_NOT_FOUND,
    templates.TemplateFailed: sync.Reason.TEMPLATE_FAILED,
}


def _kept(exc: Exception) -> str:
    """A failed write's message, saying what a shaping failure leaves in place."""
    if isinstance(exc, (shape.KeyMissing, templates.TemplateFailed)):
        return f"{exc}; the Secret is kept as it was"
    return str(exc)
