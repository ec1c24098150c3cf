"""Reading the whole token: every record, chunk and ledger; each path's winner; leftovers collected."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping

from hsm_common import checksum, names

from . import codec, layout, select, token

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LedgerState:
    """The current ledger and its objects on the token (the ledger object last)."""

    ledger: layout.Ledger
    objects: tuple[token.Handle, ...]
    size: int


@dataclasses.dataclass(frozen=True)
class Usage:
    """What the token holds, in objects."""

    foreign_objects: int
    own_objects: int


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a scan found and kept."""

    heads: dict[str, layout.Head]
    """Each path's winner, tombstones included."""
    records: dict[str, tuple[str, token.Handle]]
    """path → (generation, record object) of each winning record."""
    path_objects: dict[str, list[token.Handle]]
    """Every object kept for a path (records and their chunks): what an overwrite destroys."""
    path_bytes: dict[str, int]
    """Bytes of the objects kept for each path."""
    chunks: dict[str, token.Handle]
    ledger: LedgerState | None
    ledger_stale: bool
    """The ledger holds tombstones that expired or were overwritten: rewrite it."""
    usage: Usage
    collected: int


@dataclasses.dataclass
class _Read:
    """Everything found on the token, before any decision."""

    records: dict[str, list[select.Found[token.Handle]]] = dataclasses.field(default_factory=dict)
    bodies: dict[tuple[str, str], bytes] = dataclasses.field(default_factory=dict)
    record_bytes: dict[int, int] = dataclasses.field(default_factory=dict)
    broken: list[token.Handle] = dataclasses.field(default_factory=list)
    chunks: dict[str, list[token.Handle]] = dataclasses.field(default_factory=dict)
    own_raw: set[int] = dataclasses.field(default_factory=set)

    def mine(self, handle: token.Handle) -> None:
        self.own_raw.add(token.Token.raw_handle(handle))

    @property
    def own(self) -> int:
        return len(self.own_raw)


def _read_records(tok: token.Token, found: _Read) -> None:
    for handle in tok.find(layout.APPLICATION_RECORD):
        found.mine(handle)
        label, raw = tok.read_label_and_value(handle)
        parsed = layout.parse_label(label)
        try:
            decoded = codec.decode_record(label, raw)
            names.validate_path(decoded.head.path)
        except layout.UnknownFormat:
            if parsed is not None:
                found.records.setdefault(parsed[0], []).append(select.Found(handle, None, foreign=True))
            continue
        except (ValueError, names.InvalidName):
            # An interrupted create, or a record that can never become valid: ours to collect by its label.
            if parsed is not None and parsed[2] is None:
                found.broken.append(handle)
            continue
        head = decoded.head
        found.records.setdefault(head.path, []).append(select.Found(handle, head))
        found.record_bytes[id(handle)] = len(raw) + (head.size if head.chunks else 0)
        if decoded.body is not None:
            found.bodies[(head.path, head.generation)] = decoded.body


def _read_chunks(tok: token.Token, found: _Read) -> None:
    for handle in tok.find(layout.APPLICATION_CHUNK):
        found.mine(handle)
        found.chunks.setdefault(tok.read_label(handle), []).append(handle)


def read_chunked(
    tok: token.Token, label: str, count: int, chunks: Mapping[str, token.Handle]
) -> bytes | None:
    """The body kept in count chunks of the object labelled label, or None when one is missing."""
    pieces = []
    try:
        for chunk_label in layout.chunk_labels(label, count):
            handle = chunks.get(chunk_label)
            if handle is None:
                return None
            pieces.append(tok.read_value(handle))
    except token.StaleHandle:
        return None
    return b"".join(pieces)


def verified_data(
    tok: token.Token, head: layout.Head, body: bytes | None, chunks: Mapping[str, token.Handle]
) -> dict[str, bytes] | None:
    """head's data when its body is complete and the checksum matches, else None."""
    if body is None:
        body = read_chunked(tok, layout.record_label(head.path, head.generation), head.chunks, chunks)
        if body is None:
            return None
    try:
        data = codec.decode_body(head, body)
    except ValueError:
        return None
    return data if checksum.checksum(data) == head.checksum else None


@dataclasses.dataclass(frozen=True)
class _LedgerPick:
    state: LedgerState | None
    collect: list[token.Handle]


def _read_ledgers(tok: token.Token, found: _Read) -> _LedgerPick:
    """The highest complete ledger; the other ledger objects (and their chunks) are leftovers."""
    firsts = {label: refs[0] for label, refs in found.chunks.items()}
    complete: list[tuple[layout.Ledger, token.Handle, int]] = []
    rest: list[token.Handle] = []
    incomplete = False
    for handle in tok.find(layout.APPLICATION_LEDGER):
        found.mine(handle)
        label, raw = tok.read_label_and_value(handle)
        try:
            decoded = codec.decode_ledger(label, raw)
            ledger = decoded.ledger
            if decoded.body is None:
                body = read_chunked(tok, label, ledger.chunks, firsts)
                if body is None:
                    incomplete = True
                    rest.append(handle)
                    continue
                ledger = dataclasses.replace(ledger, tombstones=codec.decode_tombstones(ledger, body))
        except layout.UnknownFormat:
            continue
        except ValueError:
            rest.append(handle)
            continue
        complete.append((ledger, handle, len(raw) + (ledger.size if ledger.chunks else 0)))
    if not complete:
        # Nothing is destroyed while no ledger is complete: its chunks may come back.
        return _LedgerPick(None, [] if incomplete else rest)
    complete.sort(key=lambda item: item[0].sequence, reverse=True)
    ledger, handle, size = complete[0]
    label = layout.ledger_label(ledger.generation)
    objects = (*(firsts[chunk] for chunk in layout.chunk_labels(label, ledger.chunks)), handle)
    return _LedgerPick(LedgerState(ledger, objects, size), rest + [item[1] for item in complete[1:]])


def _collect(tok: token.Token, refs: list[token.Handle]) -> int:
    """Destroy refs; one that is already gone counts as collected."""
    for ref in refs:
        with contextlib.suppress(token.StaleHandle):
            tok.destroy(ref)
    return len(refs)


def full_scan(
    tok: token.Token, trusted: Callable[[layout.Head], bool], retention: float, collect: bool = True
) -> Snapshot:
    """Read every object of ours, decide each path and (when collect) destroy the leftovers.

    trusted(head) is True for generations already verified by this process: their chunks are not re-read.
    """
    found = _Read()
    _read_records(tok, found)
    _read_chunks(tok, found)
    pick = _read_ledgers(tok, found)
    census = tok.census(found.own_raw)
    tombstones = pick.state.ledger.tombstones if pick.state else ()
    for tomb in tombstones:
        found.records.setdefault(tomb.path, []).append(select.Found(None, tomb))
    firsts = {label: refs[0] for label, refs in found.chunks.items()}
    now = datetime.datetime.now(datetime.UTC)

    def complete(head: layout.Head) -> bool:
        if head.deleted:
            return True
        label = layout.record_label(head.path, head.generation)
        if any(chunk not in firsts for chunk in layout.chunk_labels(label, head.chunks)):
            return False
        if trusted(head):
            return True
        body = found.bodies.get((head.path, head.generation))
        return verified_data(tok, head, body, firsts) is not None

    decisions = {
        path: select.decide(items, complete, now, retention) for path, items in found.records.items()
    }
    # A removed token answers finds with an empty list: make sure it is still there before trusting
    # (let alone collecting on) what the scan saw.
    tok.probe()
    kept_owners = [
        (layout.record_label(head.path, head.generation), head.chunks)
        for decision in decisions.values()
        for head in decision.kept
        if not head.deleted
    ]
    if pick.state is not None:
        kept_owners.append((layout.ledger_label(pick.state.ledger.generation), pick.state.ledger.chunks))
    to_collect = [ref for decision in decisions.values() for ref in decision.collect]
    to_collect += found.broken + pick.collect + select.chunk_orphans(found.chunks, kept_owners)
    collected = debris = 0
    if collect and (to_collect or census.debris):
        log.info("collecting leftovers", extra={"objects": len(to_collect), "debris": len(census.debris)})
        collected = _collect(tok, to_collect)
        for raw in census.debris:
            tok.destroy_debris(raw)
        debris = len(census.debris)
    gone = {id(ref) for ref in to_collect} if collect else set()
    foreign = census.total - found.own - debris
    return _snapshot(found, decisions, pick.state, foreign, gone, collected + debris, firsts)


def _snapshot(
    found: _Read,
    decisions: Mapping[str, select.Decision[token.Handle]],
    ledger: LedgerState | None,
    foreign: int,
    gone: set[int],
    collected: int,
    firsts: Mapping[str, token.Handle],
) -> Snapshot:
    heads = {path: d.winner for path, d in decisions.items() if d.winner is not None}
    records: dict[str, tuple[str, token.Handle]] = {}
    path_objects: dict[str, list[token.Handle]] = {}
    path_bytes: dict[str, int] = {}
    for path, items in found.records.items():
        for item in items:
            # Tombstones have no object of their own; foreign records are never destroyed by a write.
            if item.ref is None or item.head is None or id(item.ref) in gone:
                continue
            label = layout.record_label(path, item.head.generation)
            chunks = [
                firsts[chunk] for chunk in layout.chunk_labels(label, item.head.chunks) if chunk in firsts
            ]
            path_objects.setdefault(path, []).extend([item.ref, *chunks])
            path_bytes[path] = path_bytes.get(path, 0) + found.record_bytes.get(id(item.ref), 0)
            if heads.get(path) is item.head:
                records[path] = (item.head.generation, item.ref)
    kept_chunks = {label: ref for label, ref in firsts.items() if id(ref) not in gone}
    tombstones = ledger.ledger.tombstones if ledger else ()
    stale = any(heads.get(tomb.path) is not tomb for tomb in tombstones)
    return Snapshot(
        heads=heads,
        records=records,
        path_objects=path_objects,
        path_bytes=path_bytes,
        chunks=kept_chunks,
        ledger=ledger,
        ledger_stale=stale,
        usage=Usage(
            foreign_objects=max(0, foreign),
            own_objects=found.own - len(gone),
        ),
        collected=collected,
    )
