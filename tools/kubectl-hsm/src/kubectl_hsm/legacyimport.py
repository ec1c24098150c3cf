"""``kubectl hsm import``: the Go hsm-secrets-operator's secrets on the devices' tokens into ours, through
the API's POST /hsm/import-legacy (docs/migrating.md).

Where each legacy path goes and which keys it should hold come from the cluster by default: an HSMSecret
in namespace N names the HSM path ``N/<spec.hsmPath or its name>``, so its legacy path (the Go layout's
paths are not namespaced) is ``<spec.hsmPath or its name>``, sent to N; the keys of the Kubernetes Secret
it fills are the keys the path should hold, which is how half-written paths are found. A legacy path two
HSMSecrets of different namespaces name is sent nowhere and reported: ``--mapping`` or ``--namespace``
decides it. The inputs are gathered in one place (ClusterInputs), so other sources (Go manifests) can add
to them.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

#: The HSMSecret resource (the plugin ships without the operator's libraries).
GROUP, VERSION, PLURAL = "hsm.j5t.io", "v1alpha1", "hsmsecrets"
DONE = frozenset({"would-import", "imported", "already-imported"})


class InputError(ValueError):
    """A mapping file or cluster answer that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class HSMSecretRef:
    """What an HSMSecret tells the import: its namespace, legacy path, and the keys of its Secret."""

    namespace: str
    name: str
    legacy_path: str
    keys: tuple[str, ...]
    """Keys of the Kubernetes Secret it fills (empty: no such Secret, so the keys are not known)."""


@dataclasses.dataclass(frozen=True)
class ClusterInputs:
    mapping: dict[str, str]
    """Legacy path → namespace (exact paths; the API treats them as prefixes, longest first)."""
    known_paths: dict[str, list[str]]
    clashes: dict[str, list[str]]
    """Legacy paths HSMSecrets of several namespaces name → those namespaces (not mapped)."""


def reference(item: Mapping[str, Any], secret_keys: Iterable[str]) -> HSMSecretRef:
    """The HSMSecretRef of one HSMSecret object (as the API server returns it)."""
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    name = str(meta.get("name", ""))
    return HSMSecretRef(
        namespace=str(meta.get("namespace", "")),
        name=name,
        legacy_path=str(spec.get("hsmPath") or name).strip("/"),
        keys=tuple(sorted(secret_keys)),
    )


def cluster_inputs(refs: Iterable[HSMSecretRef]) -> ClusterInputs:
    """The mapping and known paths the HSMSecrets name. Pure."""
    namespaces: dict[str, set[str]] = {}
    keys: dict[str, set[str]] = {}
    for ref in refs:
        namespaces.setdefault(ref.legacy_path, set()).add(ref.namespace)
        keys.setdefault(ref.legacy_path, set()).update(ref.keys)
    mapping = {path: next(iter(found)) for path, found in namespaces.items() if len(found) == 1}
    clashes = {path: sorted(found) for path, found in namespaces.items() if len(found) > 1}
    known = {path: sorted(found) for path, found in sorted(keys.items())}
    return ClusterInputs(dict(sorted(mapping.items())), known, clashes)


def read_mapping(path: str) -> dict[str, str]:
    """A mapping file: one JSON object of legacy path or prefix → namespace."""
    try:
        document = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read the mapping file {path}: {error}") from None
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise InputError(
            f"the mapping file {path} must hold one JSON object: legacy path or prefix → namespace"
        )
    return {str(prefix): value for prefix, value in document.items()}


def read_cluster(kubeconfig: str | None, context: str | None) -> list[HSMSecretRef]:
    """Every HSMSecret the kubeconfig's user can list, with the keys of the Secret each fills."""
    import kubernetes

    try:
        api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        custom = kubernetes.client.CustomObjectsApi(api_client)
        listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    except Exception as error:
        raise InputError(f"cannot list the cluster's HSMSecrets: {type(error).__name__}") from None
    core = kubernetes.client.CoreV1Api(api_client)
    refs = []
    for item in listed.get("items", []):
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        secret_name = spec.get("secretName") or meta.get("name", "")
        try:
            secret = core.read_namespaced_secret(secret_name, meta.get("namespace", ""))
            keys: Iterable[str] = (secret.data or {}).keys()
        except kubernetes.client.exceptions.ApiException as error:
            if error.status not in (403, 404):
                raise InputError(f"cannot read Secret {secret_name}: HTTP {error.status}") from None
            keys = ()
        refs.append(reference(item, keys))
    return refs


def body(
    namespace: str | None,
    mapping: Mapping[str, str],
    known_paths: Mapping[str, list[str]],
    device: str | None,
    apply: bool,
    remove_legacy: bool,
    import_incomplete: bool,
) -> dict[str, Any]:
    """The request body of POST /hsm/import-legacy."""
    sent: dict[str, Any] = {
        "mapping": dict(mapping),
        "knownPaths": dict(known_paths),
        "apply": apply,
        "removeLegacy": remove_legacy,
        "importIncomplete": import_incomplete,
    }
    if namespace:
        sent["defaultNamespace"] = namespace
    if device:
        sent["device"] = device
    return sent


def settled(report: Mapping[str, Any]) -> bool:
    """True when every device answered, no label was undecided and every path is (or would be) done."""
    devices = report.get("devices", [])
    return all(
        device.get("error") is None
        and not device.get("undecided")
        and all(path["outcome"] in DONE for path in device.get("paths", []))
        for device in devices
    )


def render(report: Mapping[str, Any], clashes: Mapping[str, list[str]]) -> str:
    """The report as text: one line per legacy path, then what could not be decided. Never a value."""
    lines = []
    mode = "import" if report.get("applied") else "dry run: nothing is written (--apply imports)"
    lines.append(f"{mode}")
    for device in report.get("devices", []):
        where = f"{device['hsmDevice']}/{device['device']}"
        if device.get("error"):
            lines.append(f"{where}: no answer ({device['error']['message']}); run again to finish")
            continue
        lines.append(f"{where}: {device['legacyObjects']} legacy objects")
        for path in device["paths"]:
            keys = ", ".join(path["keys"]) or "no keys"
            line = f"  {path['outcome']:<17}{path['legacyPath']} -> {path['target'] or '-'} ({keys})"
            detail = path["detail"] or "; ".join(path["reasons"]) if path["outcome"] not in DONE else ""
            if detail:
                line += f": {detail}"
            if path["legacyRemoved"]:
                line += f"; {path['legacyRemoved']} legacy objects removed"
            lines.append(line)
            lines += [f"  {'':<17}dropped: {note}" for note in path["metadataDropped"]]
        for item in device.get("undecided", []):
            lines.append(f"  undecided label {item['label']}: {item['reason']}")
        if device.get("knownMissing"):
            lines.append("  known paths with no object on the token: " + ", ".join(device["knownMissing"]))
    for path, namespaces in sorted(clashes.items()):
        lines.append(
            f"legacy path {path} is named by HSMSecrets in {', '.join(namespaces)}: "
            "give it one with --mapping"
        )
    summary = report.get("summary", {})
    lines.append("summary: " + ", ".join(f"{count} {name}" for name, count in summary.items() if count))
    return "\n".join(lines) + "\n"
