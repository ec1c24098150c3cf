"""ListSecrets answers kept ready: one per listing and index version, built from per-path encodings.

Building 10,000 SecretEntry messages in Python took ~95% of a ListSecrets (py-spy: 61% constructing the
entries, 37% copying them into the response; the index walk 2%, serialising 1 ms). An answer is
therefore kept per (prefix, include_deleted) until the index version moves; and when it moves, only the
paths whose head changed are encoded again: the rest are joined from cached bytes (concatenated
encodings of a message are the message with its repeated fields appended in order) and parsed once.
"""

from __future__ import annotations

import threading

from hsm_agent.store import index, layout
from hsmproto.v1 import hsm_pb2

#: Different listings (prefix, include_deleted) kept at once; callers list a handful of prefixes.
MAX_LISTINGS = 16


def entry(head: layout.Head) -> hsm_pb2.SecretEntry:
    return hsm_pb2.SecretEntry(
        path=head.path,
        version=head.version,
        checksum=head.checksum,
        deleted=head.deleted,
        keys=list(head.keys),
        updated_at=head.time,
        writer=head.writer,
    )


def _encoded(head: layout.Head) -> bytes:
    """head as a fragment of a ListSecretsResponse: its path (when live) and its entry."""
    paths = [] if head.deleted else [head.path]
    return hsm_pb2.ListSecretsResponse(paths=paths, entries=[entry(head)]).SerializeToString()


class Listings:
    """ListSecretsResponses of one index, rebuilt only when the index changed."""

    def __init__(self, heads: index.Index) -> None:
        self._index = heads
        # Guards both caches; building happens outside it (two racing builders only duplicate work).
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, bool], tuple[int, hsm_pb2.ListSecretsResponse]] = {}
        self._fragments: dict[str, tuple[layout.Head, bytes]] = {}

    def response(self, prefix: str, include_deleted: bool) -> hsm_pb2.ListSecretsResponse:
        """The answer to ListSecrets(prefix, include_deleted) at the index's current version.

        The message is shared between callers and must not be modified.
        """
        key = (prefix, include_deleted)
        version = self._index.version
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        version, heads = self._index.listing(prefix, include_deleted)
        answer = hsm_pb2.ListSecretsResponse.FromString(b"".join(self._fragment(head) for head in heads))
        with self._lock:
            self._answers.pop(key, None)
            if len(self._answers) >= MAX_LISTINGS:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[key] = (version, answer)
            if len(self._fragments) > 2 * len(self._index) + 1000:
                self._prune()
        return answer

    def page(self, prefix: str, include_deleted: bool, after: str, limit: int) -> hsm_pb2.ListSecretsResponse:
        """The answer to a ListSecrets that asks for a page: built for each call from the cached entries,
        so it costs the page, not the listing."""
        heads = self._index.page(prefix, include_deleted, after, limit)
        return hsm_pb2.ListSecretsResponse.FromString(b"".join(self._fragment(head) for head in heads))

    def _fragment(self, head: layout.Head) -> bytes:
        cached = self._fragments.get(head.path)
        if cached is not None and cached[0] is head:
            return cached[1]
        encoded = _encoded(head)
        self._fragments[head.path] = (head, encoded)
        return encoded

    def _prune(self) -> None:
        """Drop fragments of paths that left the index (the caller holds the lock)."""
        live = {head.path for head in self._index.entries(include_deleted=True)}
        self._fragments = {path: item for path, item in self._fragments.items() if path in live}
