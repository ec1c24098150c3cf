"""What each legacy path becomes: its target path, data and metadata, or why it cannot be imported. Pure.

A label is decided only by evidence, never by a guess. A path is *proven* when a ``<p>/_metadata`` object
exists, when the known-paths list names it, or when an object is labelled exactly ``<p>`` without a slash
(that can only be ``<p>``'s key ``data``). A label with two readings takes the one whose path is proven;
with both proven or neither, it is *undecided*: reported, never imported, and every path it might belong
to is held back (its key set would be a guess). A path is imported only when everything about it is
decided: its keys, its namespace, its name under our rules, and (when the known-paths list names keys)
that no key is missing, since the Go operator deleted before it wrote and a crash left paths half-written.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence

from hsm_agent.store import layout, token
from hsm_common import names

from . import golayout, inputs


class Status(enum.Enum):
    READY = "ready"
    """Everything decided: it can be imported."""
    INCOMPLETE = "incomplete"
    """Keys the known-paths list names are missing (half-written); imported only when asked."""
    AMBIGUOUS = "ambiguous"
    """An undecided label may belong to it, or it holds a key the known-paths list does not name."""
    INVALID = "invalid"
    """It cannot be stored as it is: a name our rules refuse, a size, conflicting duplicates, metadata."""
    UNMAPPED = "unmapped"
    """No namespace for it (no mapping rule and no --namespace)."""
    EMPTY = "empty"
    """Metadata but no key on the token: nothing to import."""


@dataclasses.dataclass(frozen=True)
class PathPlan:
    legacy_path: str
    target: str | None
    """``<namespace>/<legacy path>``; None when unmapped."""
    status: Status
    reasons: tuple[str, ...]
    data: dict[str, bytes]
    metadata: layout.Metadata
    dropped: tuple[str, ...]
    """What of the Go metadata and object ids does not fit ours, in words."""
    objects: tuple[token.ForeignObject, ...]
    """Its legacy objects in removal order: keys, then ``data`` (the label that proves the path), then
    ``_metadata``, so that a removal cut short leaves the evidence a rerun decides by."""
    missing_keys: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Undecided:
    """A label the evidence does not decide, with every way to read it."""

    label: str
    readings: tuple[tuple[str, str], ...]
    reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
    paths: tuple[PathPlan, ...]
    undecided: tuple[Undecided, ...]
    known_missing: tuple[str, ...]
    """Paths of the known-paths list with no object on the token."""


@dataclasses.dataclass
class _Path:
    """What the labels assigned to one path, before it is judged."""

    keys: dict[str, list[token.ForeignObject]] = dataclasses.field(default_factory=dict)
    metadata: list[token.ForeignObject] = dataclasses.field(default_factory=list)
    held: list[str] = dataclasses.field(default_factory=list)


def make(
    objects: Sequence[token.ForeignObject], known: inputs.KnownPaths, namespaces: inputs.Namespaces
) -> Plan:
    """The plan for the legacy objects on a token."""
    by_label: dict[str, list[token.ForeignObject]] = {}
    for obj in objects:
        by_label.setdefault(obj.label, []).append(obj)
    paths: dict[str, _Path] = {}
    key_labels: list[str] = []
    for label, objs in by_label.items():
        owner = golayout.metadata_path(label)
        if owner is not None:
            paths.setdefault(owner, _Path()).metadata.extend(objs)
        else:
            key_labels.append(label)
    proven = set(known.keys) | set(paths) | {label for label in key_labels if "/" not in label}
    undecided: list[Undecided] = []
    for label in sorted(key_labels):
        choice, reason = _decide(label, proven, known)
        if choice is None:
            readings = golayout.readings(label)
            undecided.append(Undecided(label, readings, reason))
            for path, _ in readings:
                paths.setdefault(path, _Path()).held.append(f"label {label!r} may be one of its keys")
            continue
        path, key = choice
        entry = paths.setdefault(path, _Path())
        entry.keys.setdefault(key, []).extend(by_label[label])
        if reason:
            entry.held.append(reason)
    # Paths that only an undecided label created are not paths on the token: the label speaks for them.
    plans = [
        _judge(path, entry, known, namespaces)
        for path, entry in sorted(paths.items())
        if entry.keys or entry.metadata
    ]
    missing = tuple(sorted(path for path in known.keys if path not in paths))
    return Plan(tuple(plans), tuple(undecided), missing)


def _decide(label: str, proven: set[str], known: inputs.KnownPaths) -> tuple[tuple[str, str] | None, str]:
    """(path, key) of label or None, and why (a reason to hold the path back even when decided)."""
    readings = golayout.readings(label)
    if len(readings) == 1:
        path, key = readings[0]
        expected = known.expected_keys(path)
        if expected is not None and key not in expected:
            return readings[0], f"key {key!r} is on the token but not in the known-paths list"
        return readings[0], ""
    supported = [(path, key) for path, key in readings if path in proven and _may_hold(known, path, key)]
    if len(supported) == 1:
        return supported[0], ""
    shown = " or ".join(f"path {path!r} key {key!r}" for path, key in readings)
    if supported:
        return None, f"{shown}: both paths are known"
    return None, f"{shown}: neither path is known (no _metadata object, not in the known-paths list)"


def _may_hold(known: inputs.KnownPaths, path: str, key: str) -> bool:
    expected = known.expected_keys(path)
    return expected is None or key in expected


def _single(objs: Sequence[token.ForeignObject], what: str, reasons: list[str]) -> bytes | None:
    """The one value of objects sharing a label (duplicates with equal values are one)."""
    values = {obj.value for obj in objs}
    if len(values) > 1:
        reasons.append(f"{len(objs)} objects hold {what} with different values")
        return None
    return next(iter(values))


def _judge(path: str, entry: _Path, known: inputs.KnownPaths, namespaces: inputs.Namespaces) -> PathPlan:
    invalid: list[str] = []
    data: dict[str, bytes] = {}
    for key, objs in sorted(entry.keys.items()):
        value = _single(objs, f"key {key!r}", invalid)
        if value is not None:
            data[key] = value
    metadata = layout.Metadata()
    dropped: list[str] = []
    if entry.metadata:
        raw = _single(entry.metadata, "the metadata", invalid)
        if raw is not None:
            try:
                metadata, notes = golayout.parse_metadata(raw)
                dropped.extend(notes)
            except ValueError as error:
                invalid.append(str(error))
    metadata = _with_data_type(metadata, entry.keys, dropped)
    namespace = namespaces.namespace_for(path)
    target = f"{namespace}/{path}" if namespace is not None else None
    invalid += _name_problems(target, data)
    expected = known.expected_keys(path)
    missing = tuple(sorted(expected - set(entry.keys))) if expected is not None else ()
    reasons = [*entry.held, *invalid]
    if missing:
        reasons.append(f"keys missing from the token: {', '.join(missing)} (half-written)")
    if namespace is None:
        reasons.append("no namespace: no mapping rule matches and no --namespace given")
    if not entry.keys:
        reasons.append("only a _metadata object: no key to import")
    status = _status(entry, invalid, namespace, missing)
    return PathPlan(
        legacy_path=path,
        target=target,
        status=status,
        reasons=tuple(reasons),
        data=data,
        metadata=metadata,
        dropped=tuple(dropped),
        objects=tuple(_removal_order(entry)),
        missing_keys=missing,
    )


def _status(entry: _Path, invalid: list[str], namespace: str | None, missing: tuple[str, ...]) -> Status:
    if entry.held:
        return Status.AMBIGUOUS
    if invalid:
        return Status.INVALID
    if not entry.keys:
        return Status.EMPTY
    if namespace is None:
        return Status.UNMAPPED
    return Status.INCOMPLETE if missing else Status.READY


def _name_problems(target: str | None, data: dict[str, bytes]) -> list[str]:
    problems = []
    if target is not None:
        try:
            names.validate_path(target)
        except names.InvalidName as error:
            problems.append(str(error))
    if data:
        try:
            names.validate_data(data)
        except names.InvalidName as error:
            problems.append(str(error))
    return problems


def _with_data_type(
    metadata: layout.Metadata, keys: dict[str, list[token.ForeignObject]], dropped: list[str]
) -> layout.Metadata:
    """metadata with the data type the keys' object ids name, when the metadata names none and every key
    that has an object id names the same one (ours has one data type per secret, not per key)."""
    types: dict[str, str] = {}
    for key, objs in sorted(keys.items()):
        try:
            kind = golayout.data_type(objs[0].object_id)
        except ValueError as error:
            dropped.append(f"object id of key {key!r}: {error}")
            continue
        if kind is not None:
            types[key] = kind
    kinds = set(types.values())
    if not kinds or (metadata.data_type and kinds == {metadata.data_type}):
        return metadata
    if metadata.data_type:
        dropped.append(f"object ids naming {_listed(kinds)} (the metadata's dataType is kept)")
        return metadata
    if len(kinds) > 1:
        per_key = ", ".join(f"{key}: {kind}" for key, kind in types.items())
        dropped.append(f"data types per key ({per_key}): ours has one per secret")
        return metadata
    return dataclasses.replace(metadata, data_type=kinds.pop())


def _listed(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))


def _removal_order(entry: _Path) -> list[token.ForeignObject]:
    keys = sorted(entry.keys.items(), key=lambda item: (item[0] == golayout.DATA_KEY, item[0]))
    return [obj for _, objs in keys for obj in objs] + list(entry.metadata)
