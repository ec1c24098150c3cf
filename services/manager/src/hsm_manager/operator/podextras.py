"""Node paths and environment variables the operator settings add to agent or discovery pods."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Collection

#: Variables the pod specs set themselves; a setting may not override them.
RESERVED_ENV = frozenset({"POD_IP", "POD_NAME", "POD_NAMESPACE", "NODE_NAME", "HSM_DISCOVERY_HEALTH_LISTEN"})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class PodExtras:
    """What one kind of pod gets beyond its own spec."""

    host_paths: tuple[str, ...] = ()
    """Absolute, normalized node paths, each mounted at the same path in the pod."""
    env: tuple[tuple[str, str], ...] = ()
    """(NAME, VALUE) pairs added to the container's environment, in the order given."""
    read_only: tuple[bool, ...] = ()
    """Per host path: mounted read-only (``PATH:ro``) or read-write (``PATH:rw``); empty when no paths."""


def parse(
    host_paths_text: str,
    env_text: str,
    *,
    names: tuple[str, str] = ("host paths", "env"),
    taken_paths: Collection[str] = (),
    read_only_default: bool = False,
) -> PodExtras:
    """The extras of comma-separated paths and NAME=VALUE pairs; ValueError with a message for the user.

    names label the two inputs in messages (the flags they came from); taken_paths are the pod's own mount
    points, which a host path may not reuse. A path may end in ``:ro`` or ``:rw``; without either it is
    mounted as ``read_only_default`` says. Blank entries (a trailing comma) are ignored.
    """
    paths_name, env_name = names
    paths: list[str] = []
    read_only: list[bool] = []
    for entry in _entries(host_paths_text):
        path, mode = entry, read_only_default
        if entry.endswith((":ro", ":rw")):
            path, mode = entry[:-3], entry.endswith(":ro")
        if not path.startswith("/"):
            raise ValueError(f"{paths_name}: {path!r} is not an absolute path")
        if path == "/" or "//" in path or posixpath.normpath(path) != path:
            raise ValueError(f"{paths_name}: {path!r} is not normalized (no ., .., //, trailing / or bare /)")
        if path in taken_paths:
            raise ValueError(f"{paths_name}: {path!r} is already a mount point of the pod")
        if path in paths:
            raise ValueError(f"{paths_name}: {path!r} is listed twice")
        paths.append(path)
        read_only.append(mode)
    env: list[tuple[str, str]] = []
    for entry in _entries(env_text):
        name, equals, value = entry.partition("=")
        if not equals:
            raise ValueError(f"{env_name}: {entry!r} is not NAME=VALUE")
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{env_name}: {name!r} is not a valid name (letters, digits, _, no digit first)")
        if name in RESERVED_ENV:
            raise ValueError(f"{env_name}: {name} is set by the operator itself")
        if any(name == seen for seen, _ in env):
            raise ValueError(f"{env_name}: {name} is listed twice")
        env.append((name, value))
    return PodExtras(tuple(paths), tuple(env), tuple(read_only))


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]
