"""Several HSM paths behind one Secret (dataFrom): each path's newest copy, and their keys merged. Pure."""

from __future__ import annotations

import dataclasses
import hashlib

from hsm_common import models

from . import conflict, model, sync


@dataclasses.dataclass(frozen=True)
class Picked:
    """The newest copy of one source path, and the agent to read it from."""

    path: str
    agent: str
    state: model.PathState


def pick(sources: list[tuple[str, list[sync.Observation]]]) -> list[Picked] | sync.Decision:
    """Each source's newest copy among the devices that answered, or the Error decision that keeps the
    Secret: a path no device could be asked about, or one missing or deleted on every device."""
    picked = []
    for path, observations in sources:
        answered = [o for o in observations if o.error is None]
        if not answered:
            detail = "; ".join(f"{o.agent}: {o.error}" for o in observations) or "no agent is running"
            return _error(sync.Reason.DEVICE_UNAVAILABLE, f"no device answered for {path} ({detail})")
        found = conflict.newest({o.agent: o.state for o in answered})
        if found is None or found[1].deleted:
            return _error(sync.Reason.NOT_FOUND, f"source path {path} does not exist on any device")
        picked.append(Picked(path, found[0], found[1]))
    return picked


def _error(reason: sync.Reason, message: str) -> sync.Decision:
    return sync.Decision(
        sync.Action.NOTHING, models.SyncStatus.ERROR, reason, f"{message}; an existing Secret is kept"
    )


def combined(picked: list[Picked]) -> model.PathState:
    """One state standing for all sources: its checksum binds every path's version and checksum, so a new
    version of any source shows in the shape MAC without reading the HSM; its version is their sum, which
    grows whenever any source moves."""
    lines = "".join(f"{p.path}\n{p.state.version}\n{p.state.checksum}\n" for p in picked)
    return model.PathState(
        version=sum(p.state.version for p in picked), checksum=hashlib.sha256(lines.encode()).hexdigest()
    )


def versions(picked: list[Picked]) -> list[models.SourceVersion]:
    return [models.SourceVersion(path=p.path, version=p.state.version) for p in picked]


def merge(read: list[tuple[str, dict[str, bytes]]]) -> tuple[dict[str, bytes], list[models.KeyConflict]]:
    """The sources' keys merged in order (a later path's key wins), and each key held by more than one
    path with the path that won; the conflicts name keys and paths, never values."""
    merged: dict[str, bytes] = {}
    holders: dict[str, list[str]] = {}
    for path, data in read:
        for key, value in data.items():
            merged[key] = value
            holders.setdefault(key, []).append(path)
    conflicts = [
        models.KeyConflict(key=key, source=paths[-1])
        for key, paths in sorted(holders.items())
        if len(paths) > 1
    ]
    return merged, conflicts
