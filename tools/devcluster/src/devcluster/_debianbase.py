"""The Python base image: a debootstrapped Debian with what python:*-slim offers, minus what images never use.

Its recipe is every input of the build (the machine's apt sources and extra CA certificates among them); the
recipe's hash labels the image, so an unchanged recipe is never built twice.
"""

import dataclasses
import hashlib
import json
import pathlib
import shutil
import subprocess
import tempfile

from . import _aptsources, _buildlog, _imageerror, podman

RELEASE = "bookworm"
PACKAGES = ("python3", "python3-pip", "ca-certificates")
CA_DIR = pathlib.Path("/usr/local/share/ca-certificates")
"""Certificates the machine trusts beyond Debian's (the package proxy's CA): the base trusts them too."""

# What build does beyond debootstrap. Part of the recipe hash, so changing it rebuilds the base.
_ENV = (
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
    # pip and uv in a build verify the proxy's certificate against the system store, not their bundled roots.
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
)
_DPKG_EXCLUDES = """\
# Images need no documentation; packages installed later (Dockerfile apt-get) skip it too.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
# As Debian's own container images: no package caches (pkgcache.bin, srcpkgcache.bin: 80 MB per apt-get
# layer), no .deb files left behind, no translations.
_APT_CLEAN = (
    "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"
)
_APT_CONF = (
    (
        "docker-clean",
        f'DPkg::Post-Invoke {{ "{_APT_CLEAN}"; }};\n'
        f'APT::Update::Post-Invoke {{ "{_APT_CLEAN}"; }};\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n',
    ),
    ("docker-no-languages", 'Acquire::Languages "none";\n'),
    ("docker-gzip-indexes", 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n'),
)
_STEPS = "2"
"""Version of build's steps; bump it when they change in a way the other recipe inputs do not show."""
_TAR_EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every input of the base image; its hash labels the image."""

    release: str
    packages: tuple[str, ...]
    mirror: str
    sources_list: str
    ca_certificates: tuple[tuple[str, bytes], ...]
    """(path relative to CA_DIR, contents) of each extra trusted certificate."""
    env: tuple[tuple[str, str], ...] = _ENV
    dpkg_excludes: str = _DPKG_EXCLUDES
    apt_conf: tuple[tuple[str, str], ...] = _APT_CONF
    steps: str = _STEPS


def recipe_hash(recipe: Recipe) -> str:
    """A stable hash of every input of the base image (certificate contents included)."""
    fields = dataclasses.asdict(recipe)
    fields["ca_certificates"] = [[name, data.hex()] for name, data in recipe.ca_certificates]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def ca_certificates(directory: pathlib.Path = CA_DIR) -> tuple[tuple[str, bytes], ...]:
    """The ``*.crt`` files under ``directory`` (as update-ca-certificates finds them), sorted by path."""
    if not directory.is_dir():
        return ()
    return tuple(
        (str(path.relative_to(directory)), path.read_bytes()) for path in sorted(directory.rglob("*.crt"))
    )


def host_recipe() -> Recipe:
    """The base image's recipe on this machine (its apt sources and extra CA certificates)."""
    sources = _aptsources.host_sources()
    return Recipe(
        release=RELEASE,
        packages=PACKAGES,
        mirror=_aptsources.debian_mirror(sources, RELEASE),
        sources_list=_aptsources.sources_list(sources, RELEASE),
        ca_certificates=ca_certificates(),
    )


def build(recipe: Recipe, name: str, label: str, cache: pathlib.Path) -> None:
    """Debootstrap ``recipe`` in a work directory under ``cache`` and import it as ``name`` with ``label``.

    ``label`` is a ``key=value`` pair. The work directory is removed afterwards, whether the build succeeded.
    """
    for stale in cache.glob("base-work-*"):
        _remove_tree(stale)
    work = pathlib.Path(tempfile.mkdtemp(dir=cache, prefix="base-work-"))
    try:
        rootfs = work / "rootfs"
        log = _buildlog.path("base")
        log.unlink(missing_ok=True)
        packages = ",".join(recipe.packages)
        argv = ["debootstrap", "--variant=minbase", f"--include={packages}", recipe.release, str(rootfs)]
        _buildlog.run([*argv, recipe.mirror], log, timeout=1800.0)
        _customise(rootfs, recipe, log)
        layer = work / "rootfs.tar"
        excludes = [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
        _buildlog.run(
            ["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(layer), "."], log, 600.0
        )
        changes = [f"ENV {key}={value}" for key, value in recipe.env]
        changes += [f"LABEL {label}", 'CMD ["python3"]']
        podman.run("import", *(arg for change in changes for arg in ("--change", change)), str(layer), name)
    finally:
        _remove_tree(work)


def _customise(rootfs: pathlib.Path, recipe: Recipe, log: pathlib.Path) -> None:
    """What python:*-slim offers that debootstrap does not, minus what an image never needs."""
    # pip installs uv into the system Python in the Dockerfiles' build stage (PEP 668 would refuse).
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    python = rootfs / "usr/bin/python"
    if not python.is_symlink() and not python.exists():
        python.symlink_to("python3")
    for name, data in recipe.ca_certificates:
        target = rootfs / "usr/local/share/ca-certificates" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    env = {"PATH": dict(recipe.env)["PATH"], "LANG": "C.UTF-8"}
    _buildlog.run(["chroot", str(rootfs), "update-ca-certificates"], log, timeout=300.0, env=env)
    (rootfs / "etc/apt/sources.list").write_text(recipe.sources_list)
    (rootfs / "etc/dpkg/dpkg.cfg.d/excludes").write_text(recipe.dpkg_excludes)
    for name, text in recipe.apt_conf:
        (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
    for pattern in ("usr/share/man/*", "usr/share/info/*", "var/lib/apt/lists/*", "var/cache/apt/*.bin"):
        for path in rootfs.glob(pattern):
            _remove_tree(path)
    for path in rootfs.glob("var/cache/apt/archives/*.deb"):
        path.unlink()
    for path in rootfs.glob("usr/share/locale/*"):
        if path.name != "locale.alias":
            _remove_tree(path)
    for path in rootfs.glob("usr/share/doc/*"):
        if path.is_dir() and not path.is_symlink():
            for item in path.iterdir():
                if item.name != "copyright":
                    _remove_tree(item)
    for path in rootfs.glob("var/log/**/*"):
        if path.is_file():
            path.unlink()


def _remove_tree(path: pathlib.Path) -> None:
    """Remove ``path``, first unmounting what an interrupted debootstrap left mounted below it.

    rmtree does not stop at mount points: it would delete through a leftover bind mount of /dev or /proc.
    """
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return
    for mount in sorted(_mounts_below(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
    if _mounts_below(path):
        raise _imageerror.ImageError(f"{path} still has mounts below it; unmount them and retry")
    shutil.rmtree(path)


def _mounts_below(path: pathlib.Path) -> list[str]:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4].replace("\\040", " ") for line in mounts]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]
