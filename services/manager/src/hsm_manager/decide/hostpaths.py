"""hostPath volumes for the node paths the operator's settings give discovery pods."""

from __future__ import annotations

from typing import Any


def volumes_and_mounts(
    host_paths: tuple[str, ...], read_only: tuple[bool, ...], default_read_only: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each path as a volume ``host-<i>`` mounted at the same path; ``read_only`` per path (empty: the
    default for every one)."""
    modes = read_only or (default_read_only,) * len(host_paths)
    names = [f"host-{index}" for index in range(len(host_paths))]
    # Type "": a path may be a file or a directory, so the kubelet checks nothing; indexes are DNS-safe names.
    volumes = [
        {"name": name, "hostPath": {"path": path, "type": ""}}
        for name, path in zip(names, host_paths, strict=True)
    ]
    mounts = [
        {"name": name, "mountPath": path, "readOnly": mode}
        for name, path, mode in zip(names, host_paths, modes, strict=True)
    ]
    return volumes, mounts
