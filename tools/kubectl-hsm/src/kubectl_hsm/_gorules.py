"""How the fields of the Go operator's HSMSecret, HSMDevice and HSMPool carry over to ours: one rule per
kind rewrites an object in place and notes a Difference for every field that did not carry over as written.

It decides only what the Go meaning settles; a field that needs a choice is noted as ``decide`` and left as
written. Pure: legacymanifests does the reading and writing.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterator
from typing import Any

GROUP = "hsm.j5t.io"
API_VERSION = f"{GROUP}/v1alpha1"
KINDS = ("HSMSecret", "HSMDevice", "HSMPool")

# Our schema's fields (deploy/kustomize/base/crds; the tests validate every converted object against it and
# compare this list with the CRD's, so a field added to the CRD is never dropped as unknown).
SECRET_FIELDS = frozenset(
    {
        "secretName",
        "secretType",
        "autoSync",
        "syncInterval",
        "hsmPath",
        "dataFrom",
        "device",
        "deletionPolicy",
        "creationPolicy",
        "data",
        "target",
        "rolloutRestartTargets",
        "minRestartInterval",
    }
)
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


def hsm_objects(bodies: list[Any]) -> Iterator[dict[str, Any]]:
    """The HSM objects of bodies, those inside List documents too."""
    for body in bodies:
        if isinstance(body, dict) and isinstance(body.get("items"), list) and "List" in str(body.get("kind")):
            yield from hsm_objects(body["items"])
        elif isinstance(body, dict) and body.get("apiVersion") == API_VERSION and body.get("kind") in KINDS:
            yield body


@dataclasses.dataclass
class Object:
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


def convert(body: Any, file: str, devices: int) -> Iterator[Difference]:
    """Rewrite body in place where it is an HSM object of the Go operator (or a List of them); yield what
    did not carry over as written."""
    if not isinstance(body, dict):
        return
    if isinstance(body.get("items"), list) and "List" in str(body.get("kind")):
        for item in body["items"]:
            yield from convert(item, file, devices)
        return
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind not in KINDS or not str(api_version).startswith(f"{GROUP}/"):
        return
    obj = Object(file, body)
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


def _metadata(obj: Object) -> None:
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


def _unknown(obj: Object, mapping: dict[str, Any], prefix: str, known: set[str]) -> None:
    for key in [k for k in mapping if k not in known]:
        del mapping[key]
        obj.note(
            f"{prefix}.{key}",
            Action.DROPPED,
            "removed",
            "known to neither operator's schema: kubectl refuses it and the API server prunes it",
        )


def _secret(obj: Object, spec: dict[str, Any], devices: int) -> None:
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
    _unknown(obj, spec, "spec", set(SECRET_FIELDS))


def _device(obj: Object, spec: dict[str, Any], devices: int) -> None:
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


def _discovery(obj: Object, discovery: dict[str, Any], device_type: Any) -> None:
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


def _pkcs11(obj: Object, spec: dict[str, Any]) -> None:
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


def _pool(obj: Object, spec: dict[str, Any], devices: int) -> None:
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


_RULES: dict[str, Callable[[Object, dict[str, Any], int], None]] = {
    "HSMSecret": _secret,
    "HSMDevice": _device,
    "HSMPool": _pool,
}
