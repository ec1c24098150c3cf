"""Manifests written for the Go hsm-secrets-operator's CRDs, converted to this operator's and compared.

Both operators use the API group ``hsm.j5t.io/v1alpha1`` and the kinds HSMSecret, HSMDevice and HSMPool,
but not the same fields. ``convert_dir`` reads every YAML and JSON file under a directory and returns each
document converted (HSM objects) or as it was (everything else), with one ``Difference`` per field that
did not carry over as written. It decides only what the Go meaning settles; a field that needs a choice
is reported as ``decide`` and left as written, so the API server refuses the manifest until it is made.
Deciding is pure; the only I/O is reading the input and, in ``write_dir``, writing the output.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

GROUP = "hsm.j5t.io"
API_VERSION = f"{GROUP}/v1alpha1"
KINDS = ("HSMSecret", "HSMDevice", "HSMPool")
SUFFIXES = (".yaml", ".yml", ".json")

# Our schema's fields (deploy/kustomize/base/crds); the tests check these against the CRD YAML.
_SECRET_FIELDS = {
    "secretName",
    "secretType",
    "autoSync",
    "syncInterval",
    "hsmPath",
    "device",
    "deletionPolicy",
}
_DEVICE_TYPES = ("PicoHSM", "SmartCardHSM", "NitrokeyHSM2", "YubiHSM2", "Generic")
_PKCS11_FIELDS = {"libraryPath", "slotId", "tokenLabel", "pinSecret", "maxObjects", "maxObjectSize"}
_PATH_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)*$")
_USB_ID_RE = re.compile(r"^[0-9a-fA-F]{4}$")
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
# PKCS#11 modules our agent image ships (Debian's OpenSC) or its test image adds (SoftHSM2).
_OUR_MODULES = re.compile(r"^/usr/lib/([^/]+-linux-gnu/(pkcs11/)?opensc-pkcs11\.so|softhsm/libsofthsm2\.so)$")
# The Go discovery fell back to these IDs when an HSMDevice named neither USB IDs nor a device path.
_GO_WELL_KNOWN_IDS = {"PicoHSM": ("20a0", "4230"), "SmartCard-HSM": ("04e6", "5816")}
_GO_DEVICE_TYPES = {"SmartCard-HSM": "SmartCardHSM"}
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_GO_FINALIZER = "hsmsecret.hsm.j5t.io/finalizer"
_MIRRORING_LOST = (
    "this operator always mirrors every device of an HSMDevice: writes go to each device in one order with "
    "compare-and-set and the repair loop aligns them every --mirror-interval (30 s); there is no policy "
    "(mirroring cannot be turned off), no primary node, no read-only mirror, no target nodes, no failover "
    "switch and no per-device sync interval"
)


class ManifestError(Exception):
    """A file that cannot be read as manifests, or output that would overwrite the input; names the file."""


class Action(enum.StrEnum):
    CONVERTED = "converted"
    """Renamed, moved or rewritten so it means what it meant to the Go operator."""
    DROPPED = "dropped"
    """No equivalent here; the reason says what is lost."""
    DECIDE = "decide"
    """Left as written: only the user can choose, and the API server refuses the manifest until then."""
    CHECK = "check"
    """Kept as written, but it does not mean quite the same here: read the reason."""


@dataclasses.dataclass(frozen=True)
class Difference:
    file: str
    """The input file, relative to the directory read."""
    object: str
    """``Kind namespace/name`` (``Kind name`` without a namespace)."""
    field: str
    action: Action
    detail: str
    """What was done."""
    reason: str
    """Why, and what the user loses or must do."""


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
    devices = sum(1 for obj in _hsm_objects(all_bodies) if obj["kind"] == "HSMDevice")
    documents: list[Document] = []
    differences: list[Difference] = []
    for rel, chunks in loaded:
        for index, (body, text) in enumerate(chunks):
            converted = copy.deepcopy(body)
            found = list(_convert_any(converted, rel, devices))
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


def _hsm_objects(bodies: list[Any]) -> Iterator[dict[str, Any]]:
    for body in bodies:
        if isinstance(body, dict) and isinstance(body.get("items"), list) and "List" in str(body.get("kind")):
            yield from _hsm_objects(body["items"])
        elif isinstance(body, dict) and body.get("apiVersion") == API_VERSION and body.get("kind") in KINDS:
            yield body


# ---------------------------------------------------------------- converting


@dataclasses.dataclass
class _Object:
    """One HSM object being converted and the differences found in it."""

    file: str
    body: dict[str, Any]
    found: list[Difference] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") or {}
        ns = meta.get("namespace")
        return (
            f"{self.body['kind']} {ns}/{meta.get('name')}"
            if ns
            else f"{self.body['kind']} {meta.get('name')}"
        )

    def note(self, field: str, action: Action, detail: str, reason: str) -> None:
        self.found.append(Difference(self.file, self.name, field, action, detail, reason))


def _convert_any(body: Any, file: str, devices: int) -> Iterator[Difference]:
    if not isinstance(body, dict):
        return
    if isinstance(body.get("items"), list) and "List" in str(body.get("kind")):
        for item in body["items"]:
            yield from _convert_any(item, file, devices)
        return
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind not in KINDS or not str(api_version).startswith(f"{GROUP}/"):
        return
    obj = _Object(file, body)
    if api_version != API_VERSION:
        obj.note("apiVersion", Action.DECIDE, f"left as {api_version}", "both operators serve only v1alpha1")
        yield from obj.found
        return
    _metadata(obj)
    if "status" in body:
        del body["status"]
        obj.note(
            "status", Action.DROPPED, "removed", "the operator writes status; it is not part of a manifest"
        )
    spec = body.get("spec")
    if spec is None:
        body["spec"] = spec = {}
        obj.note(
            "spec", Action.CONVERTED, "added spec: {}", "our schema requires spec; Go defaulted all of it"
        )
    if not isinstance(spec, dict):
        obj.note("spec", Action.DECIDE, "left as written", "spec is not a mapping")
    else:
        _RULES[str(kind)](obj, spec, devices)
    yield from obj.found


def _metadata(obj: _Object) -> None:
    meta = obj.body.get("metadata")
    if not isinstance(meta, dict):
        return
    removed = [key for key in _SERVER_METADATA if meta.pop(key, None) is not None]
    annotations = meta.get("annotations") or {}
    if _LAST_APPLIED in annotations:
        del annotations[_LAST_APPLIED]
        removed.append(f"annotations[{_LAST_APPLIED}]")
        if not annotations:
            del meta["annotations"]
    if meta.pop("ownerReferences", None):
        removed.append("ownerReferences")
    if removed:
        obj.note(
            "metadata",
            Action.DROPPED,
            "removed " + ", ".join(removed),
            "set by the API server or the Go operator for one stored object (an export); applying them "
            "fails (resourceVersion) or ties the object to owners by UID",
        )
    finalizers = meta.get("finalizers") or []
    if _GO_FINALIZER in finalizers:
        meta["finalizers"] = [f for f in finalizers if f != _GO_FINALIZER]
        if not meta["finalizers"]:
            del meta["finalizers"]
        obj.note(
            "metadata.finalizers",
            Action.DROPPED,
            f"removed {_GO_FINALIZER}",
            "only the Go operator removes it: left on, the HSMSecret could never be deleted",
        )


def _unknown(obj: _Object, mapping: dict[str, Any], prefix: str, known: set[str]) -> None:
    for key in [k for k in mapping if k not in known]:
        del mapping[key]
        obj.note(
            f"{prefix}.{key}",
            Action.DROPPED,
            "removed",
            "known to neither operator's schema: kubectl refuses it and the API server prunes it",
        )


def _secret(obj: _Object, spec: dict[str, Any], devices: int) -> None:
    if "parentRef" in spec:
        ref = spec.pop("parentRef")
        obj.note(
            "spec.parentRef",
            Action.DROPPED,
            f"removed (named {ref!r})",
            "this operator serves every HSMSecret in every namespace; the Go operator served only "
            "HSMSecrets whose parentRef named its instance, so one cluster could run several",
        )
    if spec.get("autoSync") is False:
        obj.note(
            "spec.autoSync",
            Action.CHECK,
            "kept",
            "the Go operator still wrote the Secret whenever the HSMSecret changed, only without polling; "
            "ours pauses the HSMSecret: no Secret is written until autoSync is true",
        )
    if spec.get("secretType") == "":
        del spec["secretType"]
        obj.note("spec.secretType", Action.CONVERTED, "empty value removed", "both default to Opaque")
    interval = spec.get("syncInterval")
    if interval is not None:
        if not isinstance(interval, int) or isinstance(interval, bool):
            obj.note("spec.syncInterval", Action.DECIDE, "left as written", "not a number of seconds")
        elif interval <= 0:
            del spec["syncInterval"]
            obj.note(
                "spec.syncInterval",
                Action.CONVERTED,
                f"{interval} removed",
                "the Go operator took 0 as its default; ours is the operator's --default-sync-interval "
                "(300 s)",
            )
        elif not 10 <= interval <= 86400:
            spec["syncInterval"] = min(max(interval, 10), 86400)
            obj.note(
                "spec.syncInterval",
                Action.CONVERTED,
                f"{interval} → {spec['syncInterval']}",
                "ours allows 10..86400 s; it is only a drift backstop, since changes on the HSM are "
                "synced as they happen",
            )
    path = spec.get("hsmPath")
    if path is not None:
        if not isinstance(path, str) or not _PATH_RE.match(path) or len(path) > 200:
            obj.note(
                "spec.hsmPath",
                Action.DECIDE,
                "left as written",
                "our paths are lower-case segments of letters, digits, '-' and '.' (200 bytes at most); "
                "choose a valid path and import the legacy secret there (import-legacy reports such "
                "paths as invalid)",
            )
        else:
            obj.note(
                "spec.hsmPath",
                Action.CHECK,
                "kept",
                "ours lies below the HSMSecret's namespace (<namespace>/<hsmPath>): import the legacy "
                "path into this namespace (see the import mapping)",
            )
    if devices > 1 and "device" not in spec:
        obj.note(
            "spec.device",
            Action.DECIDE,
            "not set",
            f"the Go operator read and mirrored across every HSMDevice; {devices} HSMDevices are in these "
            "manifests and ours reads from the one spec.device names",
        )
    _unknown(obj, spec, "spec", _SECRET_FIELDS)


def _device(obj: _Object, spec: dict[str, Any], devices: int) -> None:
    del devices
    device_type = spec.get("deviceType")
    if device_type in _GO_DEVICE_TYPES:
        spec["deviceType"] = _GO_DEVICE_TYPES[device_type]
        obj.note(
            "spec.deviceType", Action.CONVERTED, f"{device_type} → {spec['deviceType']}", "renamed value"
        )
    elif device_type not in _DEVICE_TYPES:
        obj.note(
            "spec.deviceType",
            Action.DECIDE,
            f"left as {device_type!r}",
            "ours takes one of " + ", ".join(_DEVICE_TYPES),
        )
    discovery = spec.get("discovery")
    if discovery is None:
        discovery = {}
    for key in ("usb", "devicePath"):
        if key in spec:
            discovery[key] = spec.pop(key)
            obj.note(f"spec.{key}", Action.CONVERTED, f"moved to spec.discovery.{key}", "older Go layout")
    if isinstance(discovery, dict):
        _discovery(obj, discovery, device_type)
        if discovery:
            spec["discovery"] = discovery
    else:
        obj.note("spec.discovery", Action.DECIDE, "left as written", "not a mapping")
    _pkcs11(obj, spec)
    max_devices = spec.get("maxDevices")
    if max_devices == 0:
        del spec["maxDevices"]
        obj.note(
            "spec.maxDevices", Action.CONVERTED, "0 removed", "0 meant the default in Go; ours has no limit"
        )
    elif max_devices is not None and not (isinstance(max_devices, int) and 1 <= max_devices <= 64):
        obj.note("spec.maxDevices", Action.DECIDE, "left as written", "ours takes 1..64 devices per node")
    if "mirroring" in spec:
        policy = (spec.pop("mirroring") or {}).get("policy", "None")
        obj.note("spec.mirroring", Action.DROPPED, f"removed (policy {policy})", _MIRRORING_LOST)
    _unknown(obj, spec, "spec", {"deviceType", "discovery", "nodeSelector", "pkcs11", "maxDevices"})


def _discovery(obj: _Object, discovery: dict[str, Any], device_type: Any) -> None:
    usb = discovery.get("usb")
    if isinstance(usb, dict):
        discovery["usb"] = usb = [usb]
        obj.note(
            "spec.discovery.usb", Action.CONVERTED, "one match → a list of one", "ours lists many matches"
        )
    for entry in usb if isinstance(usb, list) else []:
        if isinstance(entry, dict) and entry.get("serialNumber") == "":
            del entry["serialNumber"]
        if not isinstance(entry, dict) or not all(
            _USB_ID_RE.match(str(entry.get(k, ""))) for k in ("vendorId", "productId")
        ):
            obj.note(
                "spec.discovery.usb",
                Action.DECIDE,
                "left as written",
                "each match needs vendorId and productId as 4 hex digits",
            )
    if "devicePath" in discovery:
        found = discovery.pop("devicePath")
        obj.note(
            "spec.discovery.devicePath",
            Action.DROPPED,
            f"removed ({found!r})",
            "ours finds devices by USB vendor/product ID (and serial) through libudev, not by device "
            "node patterns; the device plugin sets the node's permissions",
        )
    if not usb and not discovery.get("autoDiscovery"):
        ids = _GO_WELL_KNOWN_IDS.get(str(device_type))
        if ids is not None:
            discovery["usb"] = [{"vendorId": ids[0], "productId": ids[1]}]
            obj.note(
                "spec.discovery.usb",
                Action.CONVERTED,
                f"added {ids[0]}:{ids[1]}",
                f"the Go operator matched the built-in IDs of {device_type} when none were given; ours "
                "matches nothing then",
            )
        else:
            obj.note(
                "spec.discovery",
                Action.DECIDE,
                "nothing to match",
                "name the devices in discovery.usb (or set autoDiscovery); without them no device is found",
            )
    elif discovery.get("autoDiscovery"):
        obj.note(
            "spec.discovery.autoDiscovery",
            Action.CHECK,
            "kept",
            "the Go operator matched only the deviceType's built-in IDs; ours matches every HSM it knows "
            "and every reader libccid lists: name the devices in discovery.usb to match fewer",
        )
    _unknown(obj, discovery, "spec.discovery", {"usb", "autoDiscovery"})


def _pkcs11(obj: _Object, spec: dict[str, Any]) -> None:
    pkcs11 = spec.get("pkcs11")
    if pkcs11 is None:
        spec["pkcs11"] = pkcs11 = {}
    if not isinstance(pkcs11, dict):
        obj.note("spec.pkcs11", Action.DECIDE, "left as written", "not a mapping")
        return
    old = spec.pop("pkcs11LibraryPath", None)
    if old is not None and "libraryPath" not in pkcs11:
        pkcs11["libraryPath"] = old
        obj.note("spec.pkcs11LibraryPath", Action.CONVERTED, "moved to spec.pkcs11.libraryPath", "renamed")
    elif old is not None:
        obj.note(
            "spec.pkcs11LibraryPath",
            Action.DROPPED,
            "removed",
            "deprecated in Go in favour of spec.pkcs11.libraryPath, which is set",
        )
    for key in ("tokenLabel", "libraryPath"):
        if pkcs11.get(key) == "":
            del pkcs11[key]
    library = pkcs11.get("libraryPath")
    if not isinstance(library, str) or not library.startswith("/"):
        obj.note(
            "spec.pkcs11.libraryPath",
            Action.DECIDE,
            "not set" if library is None else "left as written",
            "ours requires the absolute path of the PKCS#11 module inside the agent image (OpenSC: "
            "/usr/lib/<arch>-linux-gnu/opensc-pkcs11.so)",
        )
    elif not _OUR_MODULES.match(library):
        obj.note(
            "spec.pkcs11.libraryPath",
            Action.CHECK,
            "kept",
            "the module must exist in our agent image, which ships OpenSC at "
            "/usr/lib/<arch>-linux-gnu/opensc-pkcs11.so; a path of the Go agent image may not",
        )
    pin = pkcs11.get("pinSecret")
    if not isinstance(pin, dict) or not pin.get("name") or not pin.get("key"):
        obj.note(
            "spec.pkcs11.pinSecret",
            Action.DECIDE,
            "not set" if pin is None else "left as written",
            "ours requires the Secret (name and key) holding the user PIN",
        )
    elif "namespace" in pin:
        own = (obj.body.get("metadata") or {}).get("namespace")
        if pin["namespace"] == own:
            del pin["namespace"]
            obj.note(
                "spec.pkcs11.pinSecret.namespace", Action.CONVERTED, "removed", "it names the HSMDevice's own"
            )
        else:
            obj.note(
                "spec.pkcs11.pinSecret.namespace",
                Action.DECIDE,
                f"left as {pin['namespace']!r}",
                "ours reads the PIN Secret from the HSMDevice's namespace: copy the Secret there and "
                "remove the field",
            )
    if isinstance(pkcs11.get("tokenLabel"), str) and len(pkcs11["tokenLabel"]) > 32:
        obj.note(
            "spec.pkcs11.tokenLabel", Action.DECIDE, "left as written", "PKCS#11 token labels have 32 bytes"
        )
    _unknown(obj, pkcs11, "spec.pkcs11", _PKCS11_FIELDS)


def _pool(obj: _Object, spec: dict[str, Any], devices: int) -> None:
    del devices
    name = str((obj.body.get("metadata") or {}).get("name", ""))
    obj.note(
        "(object)",
        Action.CHECK,
        "kept",
        f"the operator creates and owns the HSMPool <device>-pool of every HSMDevice itself; applying "
        f"{name or 'it'} only sets the gracePeriod of the HSMDevice "
        + (
            repr(name.removesuffix("-pool")) if name.endswith("-pool") else "it names (none: no -pool suffix)"
        ),
    )
    grace = spec.get("gracePeriod")
    if grace is not None and not _DURATION_RE.match(str(grace)):
        obj.note(
            "spec.gracePeriod", Action.DECIDE, "left as written", "ours takes durations in h, m, s and ms"
        )
    if "hsmDeviceRefs" in spec:
        refs = spec.pop("hsmDeviceRefs")
        obj.note(
            "spec.hsmDeviceRefs",
            Action.DROPPED,
            f"removed ({refs!r})",
            "a pool here belongs to the one HSMDevice its name names; it cannot gather several",
        )
    if "mirroring" in spec:
        policy = (spec.pop("mirroring") or {}).get("policy", "None")
        obj.note("spec.mirroring", Action.DROPPED, f"removed (policy {policy})", _MIRRORING_LOST)
    _unknown(obj, spec, "spec", {"gracePeriod"})


_RULES: dict[str, Callable[[_Object, dict[str, Any], int], None]] = {
    "HSMSecret": _secret,
    "HSMDevice": _device,
    "HSMPool": _pool,
}


# ---------------------------------------------------------------- report


def _import_mapping(documents: list[Document]) -> tuple[dict[str, str], list[Difference]]:
    """Legacy path → namespace for import-legacy, and a decision wherever namespaces share one path."""
    readers: dict[str, list[tuple[str, str, str]]] = {}
    for doc in documents:
        for obj in _hsm_objects([doc.body]):
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
        for obj in _hsm_objects([doc.body]):
            name = _Object(doc.file, obj).name
            mine = [d for d in conversion.differences if d.file == doc.file and d.object == name]
            status = "unchanged"
            if any(d.action is Action.DECIDE for d in mine):
                status = "needs-decision"
            elif doc.changed:
                status = "converted"
            rows.append({"file": doc.file, "index": doc.index, "object": name, "status": status})
    return rows
