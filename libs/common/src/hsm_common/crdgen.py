"""Generate the CRD manifests from the pydantic models (``python -m hsm_common.crdgen <dir>``).

Kubernetes wants structural schemas: no ``$ref``, no ``anyOf`` with null, a type on every node, and no
boolean ``additionalProperties``. Pydantic's JSON Schema is turned into that form here.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import pydantic
import yaml

from . import constants, models

_DROPPED = {"title", "default", "discriminator"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union {node['anyOf']} structurally")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == "$defs":
            continue
        if key == "additionalProperties" and isinstance(value, bool):
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "description":
            # A docstring wrapped over lines is one paragraph to kubectl explain.
            out[key] = " ".join(value.split())
        else:
            out[key] = _structural(value, defs)
    return out


def schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of model, as Kubernetes accepts it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    result: dict[str, Any] = _structural(raw, raw.get("$defs", {}))
    return result


def _column(name: str, type_: str, path: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("Age", "date", ".metadata.creationTimestamp")


def _crd(
    kind: str,
    plural: str,
    short: str,
    spec: type[pydantic.BaseModel],
    status: type[pydantic.BaseModel] | None,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": schema_of(spec),
    }
    version: dict[str, Any] = {"name": constants.VERSION, "served": True, "storage": True}
    if status is not None:
        properties["status"] = schema_of(status)
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {
        "openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": properties}
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{constants.GROUP}"},
        "spec": {
            "group": constants.GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["hsm"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def crds() -> dict[str, dict[str, Any]]:
    """Every CRD manifest by file name."""
    return {
        "hsmsecrets.yaml": _crd(
            constants.KIND_SECRET,
            constants.PLURAL_SECRET,
            "hsmsec",
            models.HSMSecretSpec,
            models.HSMSecretStatus,
            [
                _column("Secret", "string", ".status.secretRef.name"),
                _column("Status", "string", ".status.syncStatus"),
                _column("Last Sync", "date", ".status.lastSyncTime"),
                _AGE,
                # Why it is in that status (TemplateFailed, KeyNotFoundOnHSM, ...), with -o wide.
                _column("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', priority=1),
            ],
        ),
        "hsmdevices.yaml": _crd(
            constants.KIND_DEVICE,
            constants.PLURAL_DEVICE,
            "hsmdev",
            models.HSMDeviceSpec,
            None,
            [_column("Type", "string", ".spec.deviceType"), _AGE],
        ),
        "hsmpools.yaml": _crd(
            constants.KIND_POOL,
            constants.PLURAL_POOL,
            "hsmpool",
            models.HSMPoolSpec,
            models.HSMPoolStatus,
            [
                _column("Phase", "string", ".status.phase"),
                _column("Total", "integer", ".status.totalDevices"),
                _column("Available", "integer", ".status.availableDevices"),
                _AGE,
            ],
        ),
    }


def render() -> dict[str, str]:
    """File name → YAML text of every generated file, the kustomization included."""
    header = "# Generated by `make crds` from hsm_common.models; do not edit.\n"
    files = {name: header + yaml.safe_dump(manifest, sort_keys=False) for name, manifest in crds().items()}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(crds()),
    }
    files["kustomization.yaml"] = header + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the CRD manifests generated from the models.")
    parser.add_argument("out", type=pathlib.Path, help="directory to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (args.out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
