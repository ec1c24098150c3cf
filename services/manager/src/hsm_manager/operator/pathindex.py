"""Which HSMSecrets read which HSM path, so an agent's event finds the passes it calls for."""

from __future__ import annotations

import dataclasses
import threading


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
