"""Translates a pod spec into a local process launch (pure: lookups of Secrets/ConfigMaps are passed in)."""

import base64
import dataclasses
import pathlib
import re
from collections.abc import Callable, Mapping
from typing import Any

Pod = Mapping[str, Any]
SecretLookup = Callable[[str, str], dict[str, bytes] | None]
"""(namespace, name) -> decoded Secret data, or None when the Secret does not exist."""
ConfigMapLookup = Callable[[str, str], dict[str, str] | None]
TokenMinter = Callable[[str | None, int | None], str]
"""(audience, expirationSeconds) -> a token for the pod's ServiceAccount."""

_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z0-9]+)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class SpecError(ValueError):
    """The pod cannot be run (missing Secret, unsupported field); the pod stays not Ready."""


@dataclasses.dataclass(frozen=True)
class Launch:
    """Everything needed to start one container as a process."""

    argv: tuple[str, ...]
    env: dict[str, str]
    files: dict[pathlib.Path, bytes]
    """Volume contents to write before starting (Secret, ConfigMap, projected token)."""
    dirs: tuple[pathlib.Path, ...]
    """Directories to create (emptyDir and every volume root)."""


def image_name(image: str) -> str:
    """The image name without registry, path, tag or digest: ``reg:5000/x/hsm-agent:1`` → ``hsm-agent``."""
    last = image.rsplit("/", 1)[-1]
    return re.split(r"[:@]", last, maxsplit=1)[0]


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, unknown ones stay, ``$$`` is ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def field_value(pod: Pod, path: str) -> str:
    """Resolve a downward-API ``fieldRef.fieldPath``."""
    meta = pod.get("metadata", {})
    status = pod.get("status", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs", [])),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs", [])),
    }
    if path in simple:
        return str(simple[path])
    keyed = _FIELD_KEY.match(path)
    if keyed:
        return str(meta.get(keyed.group(1), {}).get(keyed.group(2), ""))
    raise SpecError(f"unsupported fieldRef {path}")


def _key_ref(ref: Mapping[str, Any], data: Mapping[str, str] | None, kind: str) -> str | None:
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise SpecError(f"{kind} {ref.get('name')} has no key {ref['key']}")
    return data[ref["key"]]


def _decode(data: dict[str, bytes] | None) -> dict[str, str] | None:
    return None if data is None else {k: v.decode(errors="replace") for k, v in data.items()}


def environment(
    pod: Pod, container: Mapping[str, Any], secrets: SecretLookup, configmaps: ConfigMapLookup
) -> dict[str, str]:
    """The container's declared environment (envFrom, then env in order, with ``$(VAR)`` expansion)."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            data = _decode(secrets(namespace, source["secretRef"]["name"]))
            optional = source["secretRef"].get("optional", False)
        else:
            data = configmaps(namespace, source["configMapRef"]["name"])
            optional = source["configMapRef"].get("optional", False)
        if data is None and not optional:
            raise SpecError(f"envFrom source missing in {namespace}: {source}")
        env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = _key_ref(ref, _decode(secrets(namespace, ref["name"])), "Secret")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = _key_ref(ref, configmaps(namespace, ref["name"]), "ConfigMap")
        else:
            # resourceFieldRef: limits mean nothing for a local process.
            value = "0"
        if value is not None:
            env[name] = value
    return env


def _items(data: Mapping[str, bytes], items: list[Mapping[str, str]] | None) -> dict[str, bytes]:
    if not items:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def _projected(
    pod: Pod,
    source: Mapping[str, Any],
    secrets: SecretLookup,
    configmaps: ConfigMapLookup,
    mint: TokenMinter,
) -> dict[str, bytes]:
    namespace = pod["metadata"]["namespace"]
    out: dict[str, bytes] = {}
    for part in source.get("sources", []):
        if "serviceAccountToken" in part:
            sat = part["serviceAccountToken"]
            out[sat["path"]] = mint(sat.get("audience"), sat.get("expirationSeconds")).encode()
        elif "configMap" in part:
            cm = configmaps(namespace, part["configMap"]["name"]) or {}
            out.update(_items({k: v.encode() for k, v in cm.items()}, part["configMap"].get("items")))
        elif "secret" in part:
            out.update(_items(secrets(namespace, part["secret"]["name"]) or {}, part["secret"].get("items")))
        elif "downwardAPI" in part:
            for item in part["downwardAPI"].get("items", []):
                if "fieldRef" in item:
                    out[item["path"]] = field_value(pod, item["fieldRef"]["fieldPath"]).encode()
    return out


def volume_files(
    pod: Pod,
    volume: Mapping[str, Any],
    secrets: SecretLookup,
    configmaps: ConfigMapLookup,
    mint: TokenMinter,
) -> dict[str, bytes] | None:
    """Relative path → content of one volume; None for a directory volume (emptyDir) with no files."""
    namespace = pod["metadata"]["namespace"]
    if "emptyDir" in volume:
        return None
    if "secret" in volume:
        src = volume["secret"]
        data = secrets(namespace, src["secretName"])
        if data is None and not src.get("optional"):
            raise SpecError(f"Secret {namespace}/{src['secretName']} not found")
        return _items(data or {}, src.get("items"))
    if "configMap" in volume:
        src = volume["configMap"]
        cm = configmaps(namespace, src["name"])
        if cm is None and not src.get("optional"):
            raise SpecError(f"ConfigMap {namespace}/{src['name']} not found")
        return _items({k: v.encode() for k, v in (cm or {}).items()}, src.get("items"))
    if "projected" in volume:
        return _projected(pod, volume["projected"], secrets, configmaps, mint)
    if "downwardAPI" in volume:
        return _projected(pod, {"sources": [volume]}, secrets, configmaps, mint)
    raise SpecError(f"unsupported volume {volume.get('name')}: {sorted(volume)}")


def rewrite_paths(value: str, mounts: Mapping[str, pathlib.Path]) -> str:
    """Replace container mount paths in ``value`` by the host directories that stand in for them.

    One pass, longest mount first, so ``/etc/hsm/pin`` wins over ``/etc/hsm`` and a replacement is never
    rewritten again (host directories often live under ``/tmp``, itself a common mount path). A mount path
    only matches as a whole path: ``/data`` matches neither in ``/database`` nor in ``/var/data``.
    """
    if not mounts:
        return value
    hosts = {mount.rstrip("/") or "/": str(host) for mount, host in mounts.items()}
    alternatives = "|".join(re.escape(m) for m in sorted(hosts, key=len, reverse=True))
    pattern = re.compile(rf"(?<![-\w./])({alternatives})(?=/|$|[^-\w.])")

    def host_of(match: re.Match[str]) -> str:
        return hosts[match.group(1)]

    return pattern.sub(host_of, value)


def launch(
    pod: Pod,
    entrypoint: tuple[str, ...],
    pod_dir: pathlib.Path,
    base_env: Mapping[str, str],
    secrets: SecretLookup,
    configmaps: ConfigMapLookup,
    mint: TokenMinter,
) -> Launch:
    """Plan how to run the pod's first container locally.

    ``entrypoint`` stands in for the image's ENTRYPOINT: it runs with the container's ``args`` unless the
    container sets ``command``, which then replaces it (as in Kubernetes); a ``command`` whose program is the
    entrypoint's name runs the resolved entrypoint.
    """
    container = pod["spec"]["containers"][0]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    files: dict[pathlib.Path, bytes] = {}
    dirs: list[pathlib.Path] = []
    volume_dirs: dict[str, pathlib.Path] = {}
    for name, volume in volumes.items():
        if "hostPath" in volume:
            # Pods run on this host: a hostPath volume is the host path itself (the pod runner's
            # umockdev wrapper redirects /sys and /dev to the node's testbed).
            volume_dirs[name] = pathlib.Path(volume["hostPath"]["path"])
            continue
        root = pod_dir / "volumes" / name
        volume_dirs[name] = root
        dirs.append(root)
        for rel, content in (volume_files(pod, volume, secrets, configmaps, mint) or {}).items():
            files[root / rel] = content
    mounts: dict[str, pathlib.Path] = {}
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in volume_dirs:
            raise SpecError(f"volumeMount {mount['name']} has no volume")
        host = volume_dirs[mount["name"]]
        if mount.get("subPath"):
            host = host / mount["subPath"]
        mounts[mount["mountPath"]] = host
    declared = environment(pod, container, secrets, configmaps)
    env = dict(base_env)
    env.update({k: rewrite_paths(v, mounts) for k, v in declared.items()})
    env["POD_IP"] = declared.get("POD_IP") or pod.get("status", {}).get("podIP", "")
    env.setdefault("HOSTNAME", pod["metadata"]["name"])
    command = [expand(c, env) for c in container.get("command", [])]
    args = [expand(a, env) for a in container.get("args", [])]
    # Only what the pod spec says is rewritten: the resolved entrypoint is a host path already (and may
    # well lie under a mount path such as /tmp when the checkout does).
    if command:
        program = pathlib.Path(command[0]).name
        if program == pathlib.Path(entrypoint[0]).name:
            head = list(entrypoint)
        else:
            head = [rewrite_paths(command[0], mounts)]
        rest = command[1:] + args
    else:
        head, rest = list(entrypoint), args
    argv = head + [rewrite_paths(a, mounts) for a in rest]
    return Launch(tuple(argv), env, files, tuple(dirs))


def b64_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's ``data`` decoded (``stringData`` never comes back from the API server)."""
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
