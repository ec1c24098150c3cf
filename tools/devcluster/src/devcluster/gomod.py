"""Reads an upstream go.mod and writes the wrapper go.mod that builds it as a dependency."""

import dataclasses
import re

_DIRECTIVE_RE = re.compile(r"^(\w+)\s*\($")
_COMMENT_RE = re.compile(r"\s*//.*$")


@dataclasses.dataclass(frozen=True)
class Replace:
    """One ``replace`` directive: ``old`` => ``new`` (a module path plus version, or a local path)."""

    old: str
    new: str
    new_version: str | None

    @property
    def is_local(self) -> bool:
        """Whether the target is a directory (only meaningful inside the upstream's own repository)."""
        return self.new.startswith(("./", "../", "/"))


@dataclasses.dataclass(frozen=True)
class GoMod:
    """The parts of a go.mod a wrapper module needs."""

    module: str
    go: str
    godebug: tuple[str, ...]
    requires: dict[str, str]
    replaces: tuple[Replace, ...]


def _statements(text: str) -> list[tuple[str, str]]:
    """Flatten blocks into (verb, rest) pairs: ``require ( a v1 )`` becomes ``("require", "a v1")``."""
    out: list[tuple[str, str]] = []
    block: str | None = None
    for raw in text.splitlines():
        line = _COMMENT_RE.sub("", raw).strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                out.append((block, line))
            continue
        opened = _DIRECTIVE_RE.match(line)
        if opened:
            block = opened.group(1)
            continue
        verb, _, rest = line.partition(" ")
        out.append((verb, rest.strip()))
    return out


def parse(text: str) -> GoMod:
    """Parse the directives of a go.mod that matter for building it from a wrapper."""
    module = go = ""
    godebug: list[str] = []
    requires: dict[str, str] = {}
    replaces: list[Replace] = []
    for verb, rest in _statements(text):
        if verb == "module":
            module = rest
        elif verb == "go":
            go = rest
        elif verb == "godebug":
            godebug.append(rest)
        elif verb == "require":
            path, version = rest.split()[:2]
            requires[path] = version
        elif verb == "replace":
            left, _, right = rest.partition("=>")
            old = left.split()[0]
            new_parts = right.split()
            replaces.append(Replace(old, new_parts[0], new_parts[1] if len(new_parts) > 1 else None))
    if not module or not go:
        raise ValueError("go.mod lacks a module or go directive")
    return GoMod(module, go, tuple(godebug), requires, tuple(replaces))


def wrapper(upstream: GoMod, version: str, sibling_version: str, module: str) -> str:
    """The wrapper go.mod text: require the upstream at ``version`` and keep its build semantics.

    Local-path replaces point into the upstream's own checkout (Kubernetes' ./staging): each one that the
    upstream requires becomes a replace by the published module at ``sibling_version``; the others
    (etcd's FORBIDDEN_DEPENDENCY guards) guard nothing outside that checkout and are dropped. Replaces to
    other modules are kept, since they change which code gets built. The godebug lines change runtime
    defaults, so they are carried over too.
    """
    lines = [f"module {module}", "", f"go {upstream.go}", ""]
    lines += [f"godebug {setting}" for setting in upstream.godebug]
    lines += ["", f"require {upstream.module} {version}", ""]
    replaced: list[str] = []
    for rep in upstream.replaces:
        if rep.is_local:
            if rep.old in upstream.requires:
                replaced.append(f"\t{rep.old} => {rep.old} {sibling_version}")
        else:
            target = f"{rep.new} {rep.new_version}" if rep.new_version else rep.new
            replaced.append(f"\t{rep.old} => {target}")
    if replaced:
        lines += ["replace (", *sorted(replaced), ")"]
    return "\n".join(lines) + "\n"
