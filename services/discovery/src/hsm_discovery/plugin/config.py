"""What the device plugins are configured with, and the parsers of its command-line flags."""

from __future__ import annotations

import dataclasses
import pathlib
import posixpath
import re
from collections.abc import Mapping

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Config:
    plugin_dir: pathlib.Path
    """The kubelet's device-plugin directory: its kubelet.sock and our sockets."""
    node_root: str = "/"
    """Where the container runtime finds the node's /dev: the prefix of every device node's host path."""
    mounts: tuple[str, ...] = ()
    """Host paths every allocation mounts read-write at the same path (a software token's store in tests)."""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Variables every allocation sets in the container."""


def absolute_path(text: str) -> str:
    """text as a normalised absolute path; raises ValueError for a relative one."""
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not an absolute path")
    return posixpath.normpath(text)


def parse_mounts(text: str) -> tuple[str, ...]:
    """``/a,/b`` as absolute paths, in order, without duplicates."""
    paths = (absolute_path(part.strip()) for part in text.split(",") if part.strip())
    return tuple(dict.fromkeys(paths))


def parse_env(text: str) -> dict[str, str]:
    """``NAME=VALUE,NAME2=VALUE2`` as a dict (values cannot hold commas)."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid variable {name!r}: use NAME=VALUE with a shell variable name")
        out[name] = value
    return out
