"""Carrying a plan out against the store, one legacy path at a time, so that a run cut short anywhere is
finished by the next one: nothing lost, nothing written twice.

For each importable path: when its target already holds every legacy key with the same bytes, it was
imported before (skipped); when the target holds anything else, it is a conflict (reported, never
overwritten). Otherwise the secret is written (compare-and-set against the version seen, so nothing
written meanwhile is overwritten) and read back; only when the read-back data is identical, byte for byte,
and only when asked, the path's legacy objects are destroyed, the evidence that decides its labels last.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping

from hsm_agent import errors
from hsm_agent.store import secret_store

from . import plan

#: The writer recorded in every imported record.
WRITER = "hsm-agent import-legacy"


class Outcome(enum.Enum):
    WOULD_IMPORT = "would-import"
    IMPORTED = "imported"
    ALREADY_IMPORTED = "already-imported"
    CONFLICT = "conflict"
    SKIPPED = "skipped"
    """Not importable as planned (ambiguous, incomplete, invalid, unmapped, empty)."""
    FAILED = "failed"
    """The store refused the write (for example a record header larger than an object)."""


DONE = frozenset({Outcome.WOULD_IMPORT, Outcome.IMPORTED, Outcome.ALREADY_IMPORTED})


@dataclasses.dataclass(frozen=True)
class Options:
    apply: bool = False
    """Write; without it nothing on the token changes (the dry run)."""
    remove_legacy: bool = False
    """Destroy a path's legacy objects once its import is verified (with apply only)."""
    import_incomplete: bool = False
    """Import half-written paths with the keys they still have."""


@dataclasses.dataclass(frozen=True)
class Result:
    path: plan.PathPlan
    outcome: Outcome
    detail: str = ""
    removed: int = 0
    """Legacy objects destroyed."""


def execute(
    store: secret_store.SecretStore,
    the_plan: plan.Plan,
    options: Options,
    report: Callable[[Result], None],
) -> list[Result]:
    """Each path's result, handed to report as soon as it is known (a run may be cut short any time).

    Errors that stop every further write (token full or gone, a failed verification) are raised.
    """
    results = []
    for path in the_plan.paths:
        result = _one(store, path, options)
        results.append(result)
        report(result)
    return results


def _importable(path: plan.PathPlan, options: Options) -> bool:
    return path.status is plan.Status.READY or (
        path.status is plan.Status.INCOMPLETE and options.import_incomplete
    )


#: Statuses whose target may hold the path already: a removal cut short leaves a path with fewer keys
#: (incomplete, when the known-paths list names its keys) or only its metadata (empty).
_MAYBE_IMPORTED = frozenset({plan.Status.READY, plan.Status.INCOMPLETE, plan.Status.EMPTY})


def _one(store: secret_store.SecretStore, path: plan.PathPlan, options: Options) -> Result:
    skipped = Result(path, Outcome.SKIPPED, "; ".join(path.reasons))
    if path.target is None or path.status not in _MAYBE_IMPORTED:
        return skipped
    target = path.target
    current = store.index.get(target)
    if current is not None and not current.deleted:
        differs = _differences(store.read(target).data, path.data)
        if differs and not _importable(path, options):
            return skipped
        if differs:
            return Result(path, Outcome.CONFLICT, f"{target} already holds other data ({differs})")
        outcome = Outcome.ALREADY_IMPORTED
    elif not _importable(path, options):
        return skipped
    elif not options.apply:
        return Result(path, Outcome.WOULD_IMPORT)
    else:
        try:
            store.write(
                target,
                path.data,
                path.metadata,
                expected=current.version if current is not None else 0,
                writer=WRITER,
            )
        except (errors.InvalidInput, errors.Conflict) as error:
            return Result(path, Outcome.FAILED, str(error))
        if store.read(target).data != path.data:
            raise errors.Corrupt(f"{target} read back differs from the legacy data of {path.legacy_path}")
        outcome = Outcome.IMPORTED
    removed = 0
    if options.apply and options.remove_legacy:
        for obj in path.objects:
            store.destroy_foreign(obj)
            removed += 1
    return Result(path, outcome, removed=removed)


def _differences(stored: Mapping[str, bytes], legacy: Mapping[str, bytes]) -> str:
    """Which legacy keys the stored secret lacks or holds other bytes for (names only); empty when it
    holds every legacy key with the same bytes (it may hold more: keys added since the import)."""
    missing = sorted(key for key in legacy if key not in stored)
    changed = sorted(key for key in legacy if key in stored and stored[key] != legacy[key])
    parts = []
    if missing:
        parts.append(f"without {', '.join(missing)}")
    if changed:
        parts.append(f"other values for {', '.join(changed)}")
    return "; ".join(parts)
