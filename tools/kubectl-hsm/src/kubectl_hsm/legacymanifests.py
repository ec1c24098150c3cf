"""Manifests written for the Go hsm-secrets-operator's CRDs, converted to this operator's and compared.

Both operators use the API group ``hsm.j5t.io/v1alpha1`` and the kinds HSMSecret, HSMDevice and HSMPool,
but not the same fields. ``convert_dir`` reads every YAML and JSON file under a directory and returns each
document converted (HSM objects) or as it was (everything else), with one ``Difference`` per field that
did not carry over as written. It decides only what the Go meaning settles; a field that needs a choice
is reported as ``decide`` and left as written, so the API server refuses the manifest until it is made.
The rules per kind live in _gorules and are pure; the only I/O here is reading the input and, in
``write_dir``, writing the output.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import yaml

from . import _gorules

# The rules' vocabulary, public here: the plugin and the tests name them through this module.
KINDS = _gorules.KINDS
Action = _gorules.Action
Difference = _gorules.Difference
SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A file that cannot be read as manifests, or output that would overwrite the input; names the file."""


@dataclasses.dataclass(frozen=True)
class Document:
    file: str
    index: int
    """Position in its file, from 0."""
    body: Any
    """The converted object (or the document as read, when it is no HSM object or did not change)."""
    text: str | None
    """The document's text as read, kept for output when nothing in it changed."""
    changed: bool


@dataclasses.dataclass(frozen=True)
class Conversion:
    documents: tuple[Document, ...]
    differences: tuple[Difference, ...]
    import_mapping: dict[str, str]
    """Legacy HSM path → namespace of the HSMSecrets reading it: a ``hsm-agent import-legacy --mapping``
    file that puts each legacy secret where the converted HSMSecrets look for it."""

    @property
    def needs_decision(self) -> bool:
        """Whether some object cannot be applied before the user decides something."""
        return any(d.action is Action.DECIDE for d in self.differences)


def convert_dir(path: pathlib.Path) -> Conversion:
    """Every manifest under path (recursively, in name order), converted, with its differences."""
    if not path.is_dir():
        raise ManifestError(f"{path}: not a directory")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    loaded = [(p.relative_to(path).as_posix(), _read(p)) for p in files]
    all_bodies = [body for _, chunks in loaded for body, _ in chunks]
    devices = sum(1 for obj in _gorules.hsm_objects(all_bodies) if obj["kind"] == "HSMDevice")
    documents: list[Document] = []
    differences: list[Difference] = []
    for rel, chunks in loaded:
        for index, (body, text) in enumerate(chunks):
            converted = copy.deepcopy(body)
            found = list(_gorules.convert(converted, rel, devices))
            differences += found
            changed = converted != body
            documents.append(Document(rel, index, converted, None if changed else text, changed))
    mapping, conflicts = _import_mapping(documents)
    return Conversion(tuple(documents), tuple(differences + conflicts), mapping)


def render_yaml(conversion: Conversion) -> str:
    """Every document as one YAML stream for ``kubectl apply -f -``, each file headed by a comment."""
    parts: list[str] = []
    for doc in conversion.documents:
        head = f"# Source: {doc.file}\n" if doc.index == 0 else ""
        parts.append(head + _doc_text(doc))
    return "---\n".join(parts)


def render_report(conversion: Conversion, fmt: str = "text") -> str:
    """The differences per object for people (``text``) or as one JSON document (``json``)."""
    objects = _object_rows(conversion)
    summary = {
        "files": len({d.file for d in conversion.documents}),
        "objects": len(objects),
        "unchanged": sum(1 for o in objects if o["status"] == "unchanged"),
        "converted": sum(1 for o in objects if o["status"] == "converted"),
        "needsDecision": sum(1 for o in objects if o["status"] == "needs-decision"),
    }
    if fmt == "json":
        diffs = [dataclasses.asdict(d) | {"action": d.action.value} for d in conversion.differences]
        body = {"objects": objects, "differences": diffs, "importMapping": conversion.import_mapping}
        return json.dumps(body | {"summary": summary}, indent=2) + "\n"
    lines: list[str] = []
    for obj in objects:
        lines.append(f"{obj['object']} ({obj['file']}): {obj['status']}")
        for d in conversion.differences:
            if d.file == obj["file"] and d.object == obj["object"]:
                lines.append(f"  {d.action.value:<9} {d.field}: {d.detail}\n            why: {d.reason}")
    if conversion.import_mapping:
        lines.append("import-legacy --mapping (legacy path -> namespace):")
        lines.append("  " + json.dumps(conversion.import_mapping, sort_keys=True))
    lines.append(", ".join(f"{value} {key}" for key, value in summary.items()))
    return "\n".join(lines) + "\n"


def write_dir(conversion: Conversion, source: pathlib.Path, output: pathlib.Path) -> list[pathlib.Path]:
    """Writes each input file's converted documents under output, same relative path; never over the input."""
    src, out = source.resolve(), output.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise ManifestError(f"{output}: the output directory must lie outside the input directory {source}")
    by_file: dict[str, list[Document]] = {}
    for doc in conversion.documents:
        by_file.setdefault(doc.file, []).append(doc)
    written: list[pathlib.Path] = []
    for rel, docs in by_file.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.lower().endswith(".json") and len(docs) == 1 and docs[0].text is None:
            target.write_text(json.dumps(docs[0].body, indent=2) + "\n")
        else:
            target.write_text("---\n".join(_doc_text(d) for d in docs))
        written.append(target)
    return written


# ---------------------------------------------------------------- reading


def _read(path: pathlib.Path) -> list[tuple[Any, str]]:
    """(parsed, text) of each document in path; JSON files hold one document."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            return [(json.loads(text), text)]
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    chunks: list[tuple[Any, str]] = []
    for first_line, chunk in _split_documents(text):
        try:
            body = yaml.safe_load(chunk)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {first_line + mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ManifestError(f"{path}: invalid YAML{where}: {problem}") from exc
        if body is not None or chunk.strip():
            chunks.append((body, chunk))
    return chunks


def _split_documents(text: str) -> Iterator[tuple[int, str]]:
    """(first line number from 0, text) of each document: split at ``---`` in column 0, as YAML does."""
    lines = text.splitlines(keepends=True)
    start, current = 0, list[str]()
    for number, line in enumerate(lines):
        if re.match(r"^---(\s|$)", line):
            if current or number:
                yield start, "".join(current)
            rest = line[3:].strip()
            start, current = number, ([rest + "\n"] if rest else [])
        else:
            current.append(line)
    if current:
        yield start, "".join(current)


def _doc_text(doc: Document) -> str:
    if doc.text is not None:
        return doc.text if doc.text.endswith("\n") else doc.text + "\n"
    return str(yaml.safe_dump(doc.body, sort_keys=False, default_flow_style=False))


# ---------------------------------------------------------------- report


def _import_mapping(documents: list[Document]) -> tuple[dict[str, str], list[Difference]]:
    """Legacy path → namespace for import-legacy, and a decision wherever namespaces share one path."""
    readers: dict[str, list[tuple[str, str, str]]] = {}
    for doc in documents:
        for obj in _gorules.hsm_objects([doc.body]):
            meta = obj.get("metadata") or {}
            spec = obj.get("spec") or {}
            path = spec.get("hsmPath") or meta.get("name")
            if obj["kind"] == "HSMSecret" and meta.get("namespace") and isinstance(path, str):
                name = f"HSMSecret {meta['namespace']}/{meta.get('name')}"
                readers.setdefault(path, []).append((meta["namespace"], doc.file, name))
    mapping: dict[str, str] = {}
    conflicts: list[Difference] = []
    for path, found in sorted(readers.items()):
        namespaces = sorted({ns for ns, _, _ in found})
        if len(namespaces) == 1:
            mapping[path] = namespaces[0]
            continue
        for _, file, name in found:
            conflicts.append(
                Difference(
                    file,
                    name,
                    "spec.hsmPath",
                    Action.DECIDE,
                    f"legacy path {path!r}",
                    "the Go operator's paths were cluster-wide and HSMSecrets in "
                    f"{', '.join(namespaces)} read this one; ours are per namespace and "
                    "import-legacy copies a path into one: choose it, or copy it to each "
                    "with one import per namespace",
                )
            )
    return mapping, conflicts


def _object_rows(conversion: Conversion) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for doc in conversion.documents:
        for obj in _gorules.hsm_objects([doc.body]):
            name = _gorules.Object(doc.file, obj).name
            mine = [d for d in conversion.differences if d.file == doc.file and d.object == name]
            status = "unchanged"
            if any(d.action is Action.DECIDE for d in mine):
                status = "needs-decision"
            elif doc.changed:
                status = "converted"
            rows.append({"file": doc.file, "index": doc.index, "object": name, "status": status})
    return rows
