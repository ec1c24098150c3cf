"""Reading every head and value on the token, choosing each path's winner and collecting leftovers."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping

from hsm_common import checksum, constants, names

from . import layout, select, token

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a scan found: winners (tombstones included) and the handles of everything kept."""

    heads: dict[str, layout.Head]
    head_handles: dict[str, list[token.Handle]]
    values: dict[str, token.Handle]
    collected: int


def _decode(label: str, raw: bytes) -> tuple[layout.Head | None, bool]:
    """(head, foreign) for a head object; objects under labels that are not our paths are foreign."""
    try:
        names.validate_path(label)
    except names.InvalidName:
        return None, True
    try:
        return layout.decode_head(label, raw), False
    except layout.UnknownFormat:
        return None, True
    except ValueError:
        return None, False


def verify(
    tok: token.Token, head: layout.Head, values: Mapping[str, token.Handle]
) -> dict[str, bytes] | None:
    """head's data when every value object is present and the checksum matches, else None."""
    try:
        data = layout.assemble(head, {label: tok.read_value(values[label]) for label in head.value_labels()})
    except (KeyError, token.StaleHandle):
        return None
    return data if checksum.checksum(data) == head.checksum else None


def _decide_all(
    tok: token.Token,
    found: Mapping[str, list[select.FoundHead[token.Handle]]],
    values: Mapping[str, token.Handle],
    trusted: Callable[[layout.Head], bool],
    retention: float,
) -> dict[str, select.Decision[token.Handle]]:
    now = datetime.datetime.now(datetime.UTC)

    def complete(head: layout.Head) -> bool:
        if head.deleted:
            return True
        if any(label not in values for label in head.value_labels()):
            return False
        return trusted(head) or verify(tok, head, values) is not None

    return {path: select.decide(items, complete, now, retention) for path, items in found.items()}


def _collect(tok: token.Token, refs: list[token.Handle]) -> int:
    """Destroy refs; one that is already gone counts as collected."""
    for ref in refs:
        with contextlib.suppress(token.StaleHandle):
            tok.destroy(ref)
    return len(refs)


def full_scan(
    tok: token.Token, trusted: Callable[[layout.Head], bool], retention: float, collect: bool = True
) -> Snapshot:
    """Read every head and value object, decide each path and (when collect) destroy the leftovers."""
    found: dict[str, list[select.FoundHead[token.Handle]]] = {}
    for handle in tok.find(constants.APPLICATION_HEAD):
        label, raw = tok.read_label_and_value(handle)
        head, foreign = _decode(label, raw)
        found.setdefault(label, []).append(select.FoundHead(handle, head, foreign))
    value_refs: dict[str, list[token.Handle]] = {}
    for handle in tok.find(constants.APPLICATION_VALUE):
        value_refs.setdefault(tok.read_label(handle), []).append(handle)
    values = {label: refs[0] for label, refs in value_refs.items()}
    decisions = _decide_all(tok, found, values, trusted, retention)
    # A removed token answers finds with an empty list: make sure it is still there before trusting
    # (let alone collecting on) what the scan saw.
    tok.probe()
    kept = [head for decision in decisions.values() for head in decision.kept]
    collected = 0
    if collect:
        heads_to_go = [ref for decision in decisions.values() for ref in decision.collect]
        values_to_go = select.orphans(value_refs, kept)
        if heads_to_go or values_to_go:
            log.info("collecting leftovers", extra={"heads": len(heads_to_go), "values": len(values_to_go)})
        collected = _collect(tok, heads_to_go) + _collect(tok, values_to_go)
    gone = {id(ref) for decision in decisions.values() for ref in decision.collect} if collect else set()
    return Snapshot(
        heads={path: d.winner for path, d in decisions.items() if d.winner is not None},
        head_handles={
            path: [item.ref for item in items if id(item.ref) not in gone] for path, items in found.items()
        },
        values=values,
        collected=collected,
    )


def path_scan(
    tok: token.Token, path: str, retention: float
) -> tuple[layout.Head | None, list[token.Handle], dict[str, token.Handle]]:
    """Re-read one path with exact-label finds: (winner, kept head handles, its value handles)."""
    found: list[select.FoundHead[token.Handle]] = []
    values: dict[str, token.Handle] = {}
    for handle in tok.find(constants.APPLICATION_HEAD, label=path):
        head, foreign = _decode(path, tok.read_value(handle))
        found.append(select.FoundHead(handle, head, foreign))
        for label in head.value_labels() if head else ():
            if label not in values:
                hits = tok.find(constants.APPLICATION_VALUE, label=label)
                if hits:
                    values[label] = hits[0]
    decision = _decide_all(tok, {path: found}, values, lambda _: False, retention)[path]
    tok.probe()
    _collect(tok, list(decision.collect))
    kept_handles = [item.ref for item in found if all(item.ref is not ref for ref in decision.collect)]
    return decision.winner, kept_handles, values
