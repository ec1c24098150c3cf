"""Node paths and environment variables the operator settings add to pods: discovery pods' own, and what
discovery's device plugin adds to agent containers with their device."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Collection

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
    reserved_env: Collection[str] = (),
    read_only_default: bool = False,
) -> PodExtras:
    """The extras of comma-separated paths and NAME=VALUE pairs; ValueError with a message for the user.

    names label the two inputs in messages (the flags they came from); taken_paths are the pod's own mount
    points, which a host path may not reuse; reserved_env are the variables the pod spec sets itself. A
    path may end in ``:ro`` or ``:rw``; without either it is mounted as ``read_only_default`` says. Blank
    entries (a trailing comma) are ignored.
    """
    paths_name, env_name = names
    paths: list[str] = []
    read_only: list[bool] = []
    for entry in _entries(host_paths_text):
        path, mode = entry, read_only_default
        if entry.endswith((":ro", ":rw")):
            path, mode = entry[:-3], entry.endswith(":ro")
        _check_path(path, paths, paths_name, taken_paths)
        paths.append(path)
        read_only.append(mode)
    return PodExtras(tuple(paths), variables(env_text, env_name, reserved_env), tuple(read_only))


def mounts(text: str, name: str, taken_paths: Collection[str] = ()) -> tuple[str, ...]:
    """Comma-separated node paths mounted read-write (no ``:ro``/``:rw``); ValueError for the user."""
    paths: list[str] = []
    for path in _entries(text):
        if path.endswith((":ro", ":rw")):
            raise ValueError(f"{name}: {path!r}: these paths are always mounted read-write, without a mode")
        _check_path(path, paths, name, taken_paths)
        paths.append(path)
    return tuple(paths)


def variables(text: str, name: str, reserved: Collection[str] = ()) -> tuple[tuple[str, str], ...]:
    """Comma-separated NAME=VALUE pairs, none of them reserved; ValueError with a message for the user."""
    env: list[tuple[str, str]] = []
    for entry in _entries(text):
        variable, equals, value = entry.partition("=")
        if not equals:
            raise ValueError(f"{name}: {entry!r} is not NAME=VALUE")
        if not _ENV_NAME.fullmatch(variable):
            raise ValueError(f"{name}: {variable!r} is not a valid name (letters, digits, _, no digit first)")
        if variable in reserved:
            raise ValueError(f"{name}: {variable} is set by the operator itself")
        if any(variable == seen for seen, _ in env):
            raise ValueError(f"{name}: {variable} is listed twice")
        env.append((variable, value))
    return tuple(env)


def node_path(text: str, name: str) -> str:
    """One absolute, normalized node path (``/`` allowed); ValueError with a message for the user."""
    if not text.startswith("/") or "//" in text or posixpath.normpath(text) != text:
        raise ValueError(f"{name}: {text!r} is not an absolute, normalized path")
    return text


def _check_path(path: str, listed: list[str], name: str, taken_paths: Collection[str]) -> None:
    if not path.startswith("/"):
        raise ValueError(f"{name}: {path!r} is not an absolute path")
    if path == "/" or "//" in path or posixpath.normpath(path) != path:
        raise ValueError(f"{name}: {path!r} is not normalized (no ., .., //, trailing / or bare /)")
    if path in taken_paths:
        raise ValueError(f"{name}: {path!r} is already a mount point of the pod")
    if path in listed:
        raise ValueError(f"{name}: {path!r} is listed twice")


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]
