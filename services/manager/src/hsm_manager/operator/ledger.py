"""What the sync passes remember of each HSMSecret from one pass to the next, and the by-status gauge."""

from __future__ import annotations

import threading

from hsm_common import models

from . import metrics


class Ledger:
    """Shared by the sync workers and the Secret event handler."""

    def __init__(self) -> None:
        # Guards everything below (sync workers and the Secret event handler).
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
        for status in models.SyncStatus:
            metrics.SECRETS_BY_STATUS.labels(status.value)  # every status shows, at 0 until counted

    def wrote(self, namespace: str, name: str, resource_version: str) -> bool:
        """True when this Secret version is the one the last sync pass wrote (its event needs no pass)."""
        with self._lock:
            return self._written.get((namespace, name)) == resource_version

    def note_written(self, namespace: str, name: str, resource_version: str) -> None:
        with self._lock:
            self._written[(namespace, name)] = resource_version

    def unresolved(self) -> list[tuple[str, str]]:
        """HSMSecrets whose device could not be resolved: a new or changed HSMDevice may resolve them."""
        with self._lock:
            return sorted(self._unresolved)

    def note_unresolved(self, key: tuple[str, str], unresolved: bool) -> None:
        with self._lock:
            _mark(self._unresolved, key, unresolved)

    def in_sync_version(self, key: tuple[str, str]) -> int | None:
        """The HSM version the last pass of key left its Secret in sync with (None: not in sync)."""
        with self._lock:
            return self._in_sync.get(key)

    def in_sync_at(self, key: tuple[str, str], path: str, version: int) -> bool:
        """True when the last pass of key left its Secret in sync with this version of path."""
        with self._lock:
            return self._in_sync_paths.get(key, {}).get(path) == version

    def note_in_sync(self, key: tuple[str, str], version: int, versions: dict[str, int]) -> None:
        """The pass of key left its Secret in sync with version (with versions of each path)."""
        with self._lock:
            self._in_sync[key] = version
            self._in_sync_paths[key] = versions

    def note_out_of_sync(self, key: tuple[str, str]) -> None:
        """The pass of key did not leave its Secret in sync."""
        with self._lock:
            self._in_sync.pop(key, None)
            self._in_sync_paths.pop(key, None)

    def patched(self, key: tuple[str, str]) -> tuple[str | None, models.HSMSecretStatus] | None:
        with self._lock:
            return self._patched.get(key)

    def note_patched(self, key: tuple[str, str], uid: str | None, status: models.HSMSecretStatus) -> None:
        with self._lock:
            self._patched[key] = (uid, status)

    def not_ours(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._not_ours

    def note_not_ours(self, key: tuple[str, str], not_ours: bool) -> None:
        with self._lock:
            _mark(self._not_ours, key, not_ours)

    def count_status(self, key: tuple[str, str], status: str) -> None:
        """Record key's status for the by-status gauge."""
        with self._lock:
            self._count_status(key, status)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what is remembered of a deleted HSMSecret."""
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


def _mark(members: set[tuple[str, str]], key: tuple[str, str], member: bool) -> None:
    """key in members when member, out of it otherwise."""
    if member:
        members.add(key)
    else:
        members.discard(key)
