"""The ImportLegacy RPC over the agent's own store: its request checked and turned into the importer's
inputs, plan.make and run.execute as ``hsm-agent import-legacy`` runs them, and the results as a response
that names paths, keys and sizes, never a value."""

from __future__ import annotations

from collections.abc import Callable

from hsm_agent import errors
from hsm_agent.store import secret_store
from hsmproto.v1 import hsm_pb2

from . import golayout, inputs, plan, run

#: Bounds of a request, so that one call cannot make the agent hold an unbounded plan.
MAX_RULES = 10_000
MAX_KNOWN_PATHS = 100_000
MAX_NAME_BYTES = 1024


class Cancelled(errors.AgentError):
    """The caller went away: the import stopped after the path in progress (a rerun finishes the job)."""


def _bounded(value: str, what: str) -> str:
    if len(value.encode()) > MAX_NAME_BYTES or not value.isprintable():
        raise errors.InvalidInput(f"{what} must be printable and at most {MAX_NAME_BYTES} bytes")
    return value


def options(request: hsm_pb2.ImportLegacyRequest) -> run.Options:
    """The run's options; InvalidInput for a combination that means nothing."""
    if request.remove_legacy and not request.apply:
        raise errors.InvalidInput("remove_legacy needs apply: legacy objects are removed only once imported")
    return run.Options(
        apply=request.apply, remove_legacy=request.remove_legacy, import_incomplete=request.import_incomplete
    )


def namespaces(request: hsm_pb2.ImportLegacyRequest) -> inputs.Namespaces:
    if len(request.mapping) > MAX_RULES:
        raise errors.InvalidInput(f"mapping has more than {MAX_RULES} rules")
    for prefix, namespace in request.mapping.items():
        _bounded(prefix, "a mapping prefix")
        if not prefix.strip("/"):
            raise errors.InvalidInput("a mapping prefix must name a legacy path (it is empty)")
        _bounded(namespace, f"the namespace of mapping {prefix!r}")
    try:
        return inputs.namespaces_of(dict(request.mapping), _bounded(request.namespace, "namespace") or None)
    except inputs.InputError as error:
        raise errors.InvalidInput(str(error)) from error


def known_paths(request: hsm_pb2.ImportLegacyRequest) -> inputs.KnownPaths:
    if len(request.known_paths) > MAX_KNOWN_PATHS:
        raise errors.InvalidInput(f"more than {MAX_KNOWN_PATHS} known paths")
    for entry in request.known_paths:
        _bounded(entry.path, "a known path")
        for key in entry.keys:
            _bounded(key, f"a key of known path {entry.path!r}")
    try:
        return inputs.known_paths_of((entry.path, list(entry.keys)) for entry in request.known_paths)
    except inputs.InputError as error:
        raise errors.InvalidInput(str(error)) from error


def import_legacy(
    store: secret_store.SecretStore,
    request: hsm_pb2.ImportLegacyRequest,
    still_wanted: Callable[[], bool],
) -> hsm_pb2.ImportLegacyResponse:
    """Plan (and with apply, import) the legacy objects of store's token, as the request says.

    still_wanted is asked after each path; when it says no, Cancelled ends the run there. Errors that stop
    every write (token full or gone, a failed verification) are raised as the store raises them.
    """
    the_options = options(request)
    the_namespaces = namespaces(request)
    known = known_paths(request)
    store.require_ready()
    objects = store.foreign_objects(golayout.APPLICATION)
    the_plan = plan.make(objects, known, the_namespaces)

    def report(result: run.Result) -> None:
        if not still_wanted():
            raise Cancelled(f"the caller went away after {result.path.legacy_path!r}: run again to finish")

    results = run.execute(store, the_plan, the_options, report)
    return hsm_pb2.ImportLegacyResponse(
        legacy_objects=len(objects),
        paths=[_result(result) for result in results],
        undecided=[
            hsm_pb2.UndecidedLabel(
                label=item.label,
                readings=[hsm_pb2.LegacyReading(path=path, key=key) for path, key in item.readings],
                reason=item.reason,
            )
            for item in the_plan.undecided
        ],
        known_missing=list(the_plan.known_missing),
        applied=the_options.apply,
    )


def _result(result: run.Result) -> hsm_pb2.LegacyPathResult:
    path = result.path
    return hsm_pb2.LegacyPathResult(
        legacy_path=path.legacy_path,
        target=path.target or "",
        status=path.status.value,
        outcome=result.outcome.value,
        detail=result.detail,
        sizes={key: len(value) for key, value in path.data.items()},
        missing_keys=list(path.missing_keys),
        reasons=list(path.reasons),
        metadata_dropped=list(path.dropped),
        legacy_objects=len(path.objects),
        legacy_removed=result.removed,
    )
