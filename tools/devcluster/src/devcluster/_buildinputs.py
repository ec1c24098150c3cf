"""The inputs of a service image build: the context files its Dockerfile copies, and one hash over them all.

An image whose inputs hash is unchanged is kept without running buildah (see :func:`devcluster.images.build`).
"""

import fnmatch
import hashlib
import os
import pathlib


def copy_sources(dockerfile: str) -> list[str] | None:
    """Context paths the Dockerfile's COPY/ADD instructions read; None when it cannot tell (read all)."""
    sources: list[str] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words[1:] if not word.startswith("--")]
        if line.rstrip().endswith("\\") or any(c in line for c in "[*?$") or len(paths) < 2:
            return None
        sources += paths[:-1]
    return sources


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` leave the context path ``path`` out (``**/`` means any depth).

    Only the forms our .dockerignore uses; with a ``!`` exception nothing counts as ignored, so an input
    hash covers too much rather than too little.
    """
    if any(pattern.startswith("!") for pattern in patterns):
        return False
    parts = path.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            tails = ["/".join(parts[i:]) for i in range(len(parts))]
            if any(fnmatch.fnmatchcase(tail, pattern[3:]) for tail in tails):
                return True
        elif fnmatch.fnmatchcase(path, pattern.strip("/")):
            return True
    return False


def inputs_hash(parts: list[tuple[str, bytes]]) -> str:
    """Hash of named inputs of an image build (Dockerfile, arguments, context files), order-independent."""
    digest = hashlib.sha256()
    for name, data in sorted(parts):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def context_inputs(root: pathlib.Path, dockerfile: pathlib.Path) -> list[tuple[str, bytes]]:
    """The Dockerfile, .dockerignore and every context file the Dockerfile copies, with mode and contents."""
    ignore_file = root / ".dockerignore"
    ignore_text = ignore_file.read_text() if ignore_file.is_file() else ""
    patterns = [
        line.strip() for line in ignore_text.splitlines() if line.strip() and not line.startswith("#")
    ]
    text = dockerfile.read_text()
    parts = [("Dockerfile", text.encode()), (".dockerignore", ignore_text.encode())]
    sources = copy_sources(text)
    for source in ["."] if sources is None else sources:
        start = root / source
        found = [start] if start.is_file() else []
        for current, dirs, files in os.walk(start):
            here = pathlib.Path(current)
            dirs[:] = [
                d for d in dirs if not dockerignored((here / d).relative_to(root).as_posix(), patterns)
            ]
            found += [here / name for name in files]
        for path in found:
            relative = path.relative_to(root).as_posix()
            if not dockerignored(relative, patterns):
                mode = "x" if os.access(path, os.X_OK) else "-"
                parts.append((f"{relative} {mode}", path.read_bytes()))
    return parts
