"""``hsm-agent import-legacy``: the command line of the importer (flags, files, output, exit code).

A dry run (the default) prints the plan and what a real run would do; ``--apply`` writes, verifies, and
with ``--remove-legacy`` removes what it verified. Text output prints one line per path as soon as it is
done, so a run cut short shows how far it came; ``--json`` prints one document at the end.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from hsm_agent.tools import exitcodes, session

from . import golayout, inputs, plan, run

PROG = "hsm-agent import-legacy"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Copy secrets the Go hsm-secrets-operator wrote on this token into the agent's format."
        " Without --apply, print the plan and change nothing. Details: docs/migrating.md.",
        epilog=exitcodes.epilog(),
        allow_abbrev=False,
    )
    session.add_token_flags(parser)
    parser.add_argument("--namespace", help="namespace of every legacy path no mapping rule matches")
    parser.add_argument("--mapping", metavar="FILE", help="JSON object: legacy path or prefix → namespace")
    parser.add_argument(
        "--known-paths",
        metavar="FILE",
        help="legacy paths known to exist, one per line, optionally followed by their keys (k1,k2)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan, change nothing (the default)")
    mode.add_argument("--apply", action="store_true", help="import: write, read back and verify")
    parser.add_argument(
        "--remove-legacy",
        action="store_true",
        help="with --apply: destroy a path's legacy objects once its import is verified",
    )
    parser.add_argument(
        "--import-incomplete",
        action="store_true",
        help="import half-written paths (keys missing per --known-paths) with the keys they still have",
    )
    return parser


def main(argv: list[str]) -> int:
    """Plan (and with --apply, run) the import; exit 0 when every legacy path is (or would be) imported."""
    return session.run_command(PROG, argv, build_parser, _run)


def _read(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise session.UsageError(f"cannot read the {what} file {path}: {error}") from error


def _run(args: argparse.Namespace) -> int:
    if args.remove_legacy and not args.apply:
        raise session.UsageError("--remove-legacy needs --apply")
    try:
        namespaces = inputs.namespaces(_read(args.mapping, "mapping"), args.namespace)
        known = inputs.known_paths(_read(args.known_paths, "known-paths"))
    except inputs.InputError as error:
        raise session.UsageError(str(error)) from error
    options = run.Options(
        apply=args.apply, remove_legacy=args.remove_legacy, import_incomplete=args.import_incomplete
    )
    with session.open_store(args) as store:
        objects = store.foreign_objects(golayout.APPLICATION)
        the_plan = plan.make(objects, known, namespaces)
        if not args.json:
            print(_heading(len(objects), options))
        results = run.execute(store, the_plan, options, lambda result: _progress(result, args.json))
    unresolved = bool(the_plan.undecided) or any(result.outcome not in run.DONE for result in results)
    code = exitcodes.Exit.UNRESOLVED if unresolved else exitcodes.Exit.OK
    if args.json:
        print(json.dumps(_document(len(objects), options, the_plan, results, code), indent=2))
    else:
        for line in _closing(the_plan, results):
            print(line)
    return int(code)


def _heading(count: int, options: run.Options) -> str:
    mode = "import" if options.apply else "dry run: nothing is written (--apply imports)"
    return f"{count} legacy objects ({golayout.APPLICATION}) on the token; {mode}"


def _progress(result: run.Result, as_json: bool) -> None:
    if as_json:
        return
    path = result.path
    target = path.target or "-"
    keys = ", ".join(sorted(path.data)) or "no keys"
    line = f"{result.outcome.value:<17}{path.legacy_path} -> {target} ({keys})"
    if result.detail:
        line += f": {result.detail}"
    if result.removed:
        line += f"; {result.removed} legacy objects removed"
    print(line, flush=True)
    for note in path.dropped:
        print(f"{'':<17}dropped: {note}", flush=True)


def _closing(the_plan: plan.Plan, results: list[run.Result]) -> list[str]:
    lines = []
    if the_plan.undecided:
        lines.append("undecided labels (not imported; list the right path in --known-paths):")
        lines += [f"  {item.label}: {item.reason}" for item in the_plan.undecided]
    if the_plan.known_missing:
        lines.append("known paths with no object on the token: " + ", ".join(the_plan.known_missing))
    counts = _counts(results)
    summary = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    lines.append(f"summary: {summary or 'no legacy paths'}; {len(the_plan.undecided)} undecided labels")
    return lines


def _counts(results: list[run.Result]) -> dict[str, int]:
    counts = {outcome.value: 0 for outcome in run.Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    counts["legacy-objects-removed"] = sum(result.removed for result in results)
    return counts


def _document(
    count: int,
    options: run.Options,
    the_plan: plan.Plan,
    results: list[run.Result],
    code: exitcodes.Exit,
) -> dict[str, Any]:
    """The JSON report: key names, sizes and reasons, never a value."""
    return {
        "ok": code is exitcodes.Exit.OK,
        "mode": "apply" if options.apply else "dry-run",
        "legacy_objects": count,
        "paths": [
            {
                "legacy_path": result.path.legacy_path,
                "target": result.path.target,
                "status": result.path.status.value,
                "outcome": result.outcome.value,
                "detail": result.detail,
                "keys": sorted(result.path.data),
                "sizes": {key: len(value) for key, value in sorted(result.path.data.items())},
                "missing_keys": list(result.path.missing_keys),
                "reasons": list(result.path.reasons),
                "metadata_dropped": list(result.path.dropped),
                "legacy_objects": len(result.path.objects),
                "legacy_removed": result.removed,
            }
            for result in results
        ],
        "undecided": [
            {"label": item.label, "readings": [list(r) for r in item.readings], "reason": item.reason}
            for item in the_plan.undecided
        ],
        "known_missing": list(the_plan.known_missing),
        "summary": _counts(results),
    }
