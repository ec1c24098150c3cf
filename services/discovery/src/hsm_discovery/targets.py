"""HSMDevice objects as discovery needs them: parsed spec or the reason it could not be parsed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from hsm_common import models

from . import match


@dataclasses.dataclass(frozen=True)
class Target:
    """One HSMDevice this node reports on."""

    name: str
    spec: models.HSMDeviceSpec | None
    error: str | None = None
    """Why spec is None: the validation message of a malformed HSMDevice."""


def describe(err: pydantic.ValidationError) -> str:
    """A one-line summary of a validation error, naming each bad field (without echoing whole objects)."""
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "spec"
        parts.append(f"spec.{where}: {item['msg']}")
    return "invalid HSMDevice: " + "; ".join(parts)


def parse(obj: Mapping[str, Any]) -> Target:
    """The Target of one HSMDevice object as returned by the API server."""
    name = str(obj.get("metadata", {}).get("name", ""))
    try:
        spec = models.HSMDeviceSpec.model_validate(obj.get("spec") or {})
    except pydantic.ValidationError as err:
        return Target(name=name, spec=None, error=describe(err))
    return Target(name=name, spec=spec)


def _raw_selector(obj: Mapping[str, Any]) -> dict[str, str]:
    """The nodeSelector of an object whose spec did not parse, when that part is still usable."""
    spec = obj.get("spec")
    raw = spec.get("nodeSelector") if isinstance(spec, dict) else None
    if isinstance(raw, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return dict(raw)
    return {}


def for_node(
    objects: Iterable[Mapping[str, Any]], node_labels: Mapping[str, str], only: str = ""
) -> list[Target]:
    """The Targets among objects whose nodeSelector picks a node labelled node_labels, by name; with
    ``only``, the HSMDevice of that name alone.

    A malformed object is kept (so its error reaches the pool) unless a readable nodeSelector excludes it.
    """
    chosen = []
    for obj in objects:
        if only and obj.get("metadata", {}).get("name") != only:
            continue
        target = parse(obj)
        selector = target.spec.node_selector if target.spec is not None else _raw_selector(obj)
        if target.name and match.node_selected(selector, node_labels):
            chosen.append(target)
    return sorted(chosen, key=lambda t: t.name)
