"""Decoded values of records already read, so that reading a secret again costs no call to the token.

A record object is never modified (it is created with CKA_MODIFIABLE false) and each write makes a new one
under a new random generation, so a value decoded from (path, generation) stays that record's value for as
long as the record exists; the store serves a copy only for the generation its index serves. It drops
every copy whenever it rebuilds its view of the token (a scan, a lost connection), which is when it
learns what other tools did to the token.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Mapping

#: What one copy is charged beyond its path, keys and values: the dicts and their entries.
ENTRY_OVERHEAD = 256


@dataclasses.dataclass(frozen=True)
class _Copy:
    generation: str
    data: Mapping[str, bytes]
    size: int


class ValueCache:
    """The least recently read values, one per path, up to max_bytes in all (0 keeps nothing)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # Guards _copies and _bytes: reads run on many threads at once.
        self._lock = threading.Lock()
        self._copies: collections.OrderedDict[str, _Copy] = collections.OrderedDict()
        self._bytes = 0

    def get(self, path: str, generation: str) -> dict[str, bytes] | None:
        """A copy of the value of path's record of generation, if it was kept."""
        with self._lock:
            found = self._copies.get(path)
            if found is None or found.generation != generation:
                return None
            self._copies.move_to_end(path)
        return dict(found.data)

    def put(self, path: str, generation: str, data: Mapping[str, bytes]) -> None:
        """Keep data as the value of path's record of generation (not when it alone exceeds the limit)."""
        size = ENTRY_OVERHEAD + len(path) + sum(len(key) + len(value) for key, value in data.items())
        if size > self.max_bytes:
            return
        with self._lock:
            self._remove(path)
            self._copies[path] = _Copy(generation, dict(data), size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, oldest = self._copies.popitem(last=False)
                self._bytes -= oldest.size

    def drop(self, path: str) -> None:
        """Forget path's copy (it was overwritten or deleted)."""
        with self._lock:
            self._remove(path)

    def clear(self) -> None:
        with self._lock:
            self._copies.clear()
            self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes charged for the copies kept."""
        return self._bytes

    def _remove(self, path: str) -> None:
        found = self._copies.pop(path, None)
        if found is not None:
            self._bytes -= found.size
