"""POST /hsm/import-legacy: each agent's importer of the Go operator's layout, every agent at once.

Every agent of the chosen HSMDevices (all of them by default) runs the import on its own token; agents
whose token holds no legacy object answer with an empty plan. A mirror group needs nothing more: the
imported secrets are ordinary secrets of the device that held the legacy objects, and the mirror repair
(the operator's periodic pass, or POST /hsm/mirror/sync) copies a path one device holds and another lacks
to the others, as it does for any write that reached only some devices. When mirrored tokens each hold the
same legacy objects, each imports its own copy; identical data and metadata make identical secrets.
"""

from __future__ import annotations

from typing import Any

from hsm_manager.gateway import client
from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import errors as mirror_errors
from hsm_manager.mirroring import fanout, groups, service

from . import errors, schemas


def request_of(body: schemas.ImportLegacyBody) -> client.LegacyImportRequest:
    """The agents' request from a validated body (schemas.import_namespaces checked its names)."""
    return client.LegacyImportRequest(
        namespace=body.default_namespace or "",
        mapping=dict(body.mapping),
        known_paths={path: tuple(keys) for path, keys in body.known_paths.items()},
        apply=body.apply,
        remove_legacy=body.remove_legacy,
        import_incomplete=body.import_incomplete,
    )


def chosen(mirror: service.Mirror, device: str | None) -> list[groups.Group]:
    """The groups of device, or of every HSMDevice with agents when device is None."""
    if device:
        return [mirror.group(device)]
    known = mirror.devices()
    if not known:
        raise mirror_errors.DeviceUnavailable("no HSMDevice has agents")
    return [mirror.group(name) for name in known]


def run(found: list[groups.Group], request: client.LegacyImportRequest) -> tuple[dict[str, Any], bool]:
    """The wire report of every agent's answer, and whether every agent answered.

    Every agent works at once, each on its own token. An agent that refuses the input fails the whole
    request (the input is the same for all, so every agent refuses it before writing anything); one that
    is unreachable or fails part-way is reported, and the others still run: a rerun finishes the job.
    """
    members = [(group.device, member) for group in found for member in group.members]
    results = fanout.each(
        [member for _, member in members], lambda member: member.client.import_legacy(request)
    )
    answers: list[dict[str, Any]] = []
    complete = True
    for (device, member), result in zip(members, results, strict=True):
        head = {"hsmDevice": device, "device": member.name}
        if isinstance(result, agent_errors.InvalidArgument):
            raise errors.InvalidArgument(f"{member.name}: {result.message}", {"field": "body"})
        if isinstance(result, agent_errors.AgentCallError):
            complete = False
            failure = mirror_errors.failure_of(result).value
            answers.append({**head, "error": {"code": failure, "message": result.message}})
            continue
        answers.append({**head, **_answer(result), "error": None})
    return {"applied": request.apply, "devices": answers, "summary": _summary(answers)}, complete


def _answer(answer: client.LegacyImport) -> dict[str, Any]:
    return {
        "legacyObjects": answer.legacy_objects,
        "paths": [
            {
                "legacyPath": path.legacy_path,
                "target": path.target or None,
                "status": path.status,
                "outcome": path.outcome,
                "detail": path.detail,
                "keys": sorted(path.sizes),
                "sizes": dict(sorted(path.sizes.items())),
                "missingKeys": list(path.missing_keys),
                "reasons": list(path.reasons),
                "metadataDropped": list(path.metadata_dropped),
                "legacyObjects": path.legacy_objects,
                "legacyRemoved": path.legacy_removed,
            }
            for path in answer.paths
        ],
        "undecided": [
            {
                "label": item.label,
                "readings": [{"path": path, "key": key} for path, key in item.readings],
                "reason": item.reason,
            }
            for item in answer.undecided
        ],
        "knownMissing": list(answer.known_missing),
    }


def _summary(answers: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        for path in answer.get("paths", []):
            counts[path["outcome"]] = counts.get(path["outcome"], 0) + 1
    counts["undecided"] = sum(len(answer.get("undecided", [])) for answer in answers)
    counts["legacyRemoved"] = sum(p["legacyRemoved"] for a in answers for p in a.get("paths", []))
    counts["failedDevices"] = sum(1 for answer in answers if answer["error"] is not None)
    return counts
