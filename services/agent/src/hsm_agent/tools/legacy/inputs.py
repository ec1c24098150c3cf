"""The importer's inputs besides the token: which namespace each legacy path goes to, and the legacy paths
known to exist (from the cluster's HSMSecrets). Pure: they are parsed from text.

Mapping file (JSON): an object of legacy path or prefix → namespace, for example
``{"team-a": "team-a-prod", "shared/db": "platform"}``. A prefix matches the path itself and every path
under it (segment by segment: ``shared`` does not match ``shared-x``); the longest match wins, and
``--namespace`` is the fallback.

Known-paths file: one legacy path per line, optionally followed by whitespace and the keys it should hold,
comma-separated (``team-a/db username,password``); blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

from hsm_common import names


class InputError(ValueError):
    """A mapping or known-paths file that cannot be used; the message names the file's problem."""


@dataclasses.dataclass(frozen=True)
class Namespaces:
    """Where legacy paths go: prefix rules and a fallback."""

    rules: Mapping[str, str] = dataclasses.field(default_factory=dict)
    default: str | None = None

    def namespace_for(self, legacy_path: str) -> str | None:
        """The namespace of legacy_path: the longest matching rule's, else the default (None: unmapped)."""
        best: tuple[int, str] | None = None
        for prefix, namespace in self.rules.items():
            matches = legacy_path == prefix or legacy_path.startswith(prefix + "/")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), namespace)
        return best[1] if best is not None else self.default


def _namespace(value: object, where: str) -> str:
    if not isinstance(value, str) or "/" in value:
        raise InputError(f"{where}: a namespace is one path segment, got {value!r}")
    try:
        return names.validate_path(value)
    except names.InvalidName as error:
        raise InputError(f"{where}: {error}") from error


def namespaces(mapping_text: str | None, default: str | None) -> Namespaces:
    """Namespaces from a mapping file's text (None: no file) and --namespace."""
    fallback = _namespace(default, "--namespace") if default is not None else None
    if mapping_text is None:
        return Namespaces({}, fallback)
    try:
        doc = json.loads(mapping_text)
    except json.JSONDecodeError as error:
        raise InputError(f"the mapping file is not JSON: {error.msg} (line {error.lineno})") from error
    if not isinstance(doc, dict):
        raise InputError("the mapping file must hold one JSON object: legacy path or prefix → namespace")
    return Namespaces(_rules(doc), fallback)


def namespaces_of(mapping: Mapping[str, str], default: str | None) -> Namespaces:
    """Namespaces from a mapping already parsed (the agent's RPC) and a fallback, by the file's rules."""
    fallback = _namespace(default, "namespace") if default is not None else None
    return Namespaces(_rules(mapping), fallback)


def _rules(doc: Mapping[str, object]) -> dict[str, str]:
    return {
        str(prefix).strip("/"): _namespace(namespace, f"mapping for {prefix!r}")
        for prefix, namespace in doc.items()
    }


@dataclasses.dataclass(frozen=True)
class KnownPaths:
    """Legacy paths known to exist, each with the keys it should hold when the list says."""

    keys: Mapping[str, frozenset[str] | None] = dataclasses.field(default_factory=dict)

    def expected_keys(self, path: str) -> frozenset[str] | None:
        """The keys path should hold; None when the list does not say (or does not name the path)."""
        return self.keys.get(path)


def known_paths(text: str | None) -> KnownPaths:
    """KnownPaths from a known-paths file's text (None: no file)."""
    if text is None:
        return KnownPaths()
    keys: dict[str, frozenset[str] | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        path, *rest = stripped.split(None, 1)
        path = path.strip("/")
        if not path:
            raise InputError(f"known-paths line {number}: no path")
        listed = frozenset(key.strip() for key in rest[0].split(",") if key.strip()) if rest else None
        keys[path] = listed or None
    return KnownPaths(keys)


def known_paths_of(entries: Iterable[tuple[str, Iterable[str]]]) -> KnownPaths:
    """KnownPaths from (path, keys) pairs already parsed (the agent's RPC); no keys: not known."""
    keys: dict[str, frozenset[str] | None] = {}
    for number, (raw, listed) in enumerate(entries, start=1):
        path = raw.strip().strip("/")
        if not path:
            raise InputError(f"known path {number}: no path")
        keys[path] = frozenset(key.strip() for key in listed if key.strip()) or None
    return KnownPaths(keys)
