"""The machine's apt sources: parsing both file formats, and picking out the Debian sources of one release."""

import dataclasses
import pathlib
import re

from . import _imageerror


@dataclasses.dataclass(frozen=True)
class AptSource:
    """One apt source: a ``deb`` line or a deb822 paragraph."""

    types: tuple[str, ...]
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Sources of a one-line-style ``sources.list``: ``deb [options] URI suite [component…]``."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = re.sub(r"^\s*\[[^]]*\]", "", rest)
        fields = rest.split()
        if len(fields) >= 2:
            found.append(AptSource((kind,), fields[0], (fields[1],), tuple(fields[2:])))
    return found


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Sources of a deb822 ``.sources`` file; paragraphs with ``Enabled: no`` are left out."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
            continue
        for uri in fields["uris"].split():
            found.append(
                AptSource(
                    tuple(fields.get("types", "").split()),
                    uri,
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                )
            )
    return found


def host_sources(apt_dir: pathlib.Path = pathlib.Path("/etc/apt")) -> list[AptSource]:
    """Every source the machine's apt reads (sources.list, sources.list.d/*.list and *.sources)."""
    found = []
    listed = apt_dir / "sources.list"
    if listed.is_file():
        found += parse_one_line_sources(listed.read_text())
    drop_ins = apt_dir / "sources.list.d"
    for path in sorted(drop_ins.iterdir()) if drop_ins.is_dir() else []:
        if path.suffix == ".list":
            found += parse_one_line_sources(path.read_text())
        elif path.suffix == ".sources":
            found += parse_deb822_sources(path.read_text())
    return found


def release_sources(sources: list[AptSource], release: str) -> list[AptSource]:
    """The Debian sources of ``release``: binary, with a ``main`` component, suite ``release[-*]``."""
    return [
        dataclasses.replace(source, suites=suites)
        for source in sources
        if "deb" in source.types and "main" in source.components
        for suites in [tuple(s for s in source.suites if s == release or s.startswith(release + "-"))]
        if suites
    ]


def debian_mirror(sources: list[AptSource], release: str) -> str:
    """The URI debootstrap fetches ``release`` from: the first source carrying that exact suite."""
    for source in release_sources(sources, release):
        if release in source.suites:
            return source.uri
    raise _imageerror.ImageError(
        f"no Debian {release} source with a main component in the machine's apt sources"
    )


def sources_list(sources: list[AptSource], release: str) -> str:
    """One-line ``sources.list`` text of the Debian sources of ``release`` among ``sources``."""
    lines = [
        f"deb {source.uri} {suite} {' '.join(source.components)}\n"
        for source in release_sources(sources, release)
        for suite in source.suites
    ]
    return "".join(dict.fromkeys(lines))
