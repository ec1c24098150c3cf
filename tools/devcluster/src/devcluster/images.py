"""The services' container images, built with buildah on a locally debootstrapped base (no registry needed).

Everything lives in podman's storage under the project cache (see :mod:`devcluster.podman`): the Python base
``localhost/hsm-python-base:bookworm``, the three service images named as a containerd kubelet looks them up
(``hsm-agent:<tag>`` in a manifest means ``docker.io/library/hsm-agent:<tag>``), the sandbox image, and the
docker-archive tarballs that ``ctr -n k8s.io images import`` loads.
"""

import contextlib
import dataclasses
import fcntl
import fnmatch
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from . import build as gobuild
from . import podman

BASE_IMAGE = "localhost/hsm-python-base:bookworm"
PAUSE_IMAGE = "docker.io/library/devcluster-pause:1"
SERVICES = ("agent", "discovery", "manager")
RELEASE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
RECIPE_LABEL = "org.hsm-secrets-operator.recipe"
"""Label of the base and pause images: the hash of their inputs; equal hash, no rebuild. The service images
inherit the base's value (their own inputs are recorded in the cache, see ``build``)."""
CA_DIR = pathlib.Path("/usr/local/share/ca-certificates")
"""Certificates the machine trusts beyond Debian's (the package proxy's CA): the base trusts them too."""

# What _build_base does beyond debootstrap. Part of the recipe hash, so changing it rebuilds the base.
_BASE_ENV = (
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
_BASE_STEPS = "2"
"""Version of _build_base's steps; bump it when they change in a way the other recipe inputs do not show."""
_TAR_EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*")


class ImageError(RuntimeError):
    """An image could not be built; the message says which step and where its log is."""


@dataclasses.dataclass(frozen=True)
class Image:
    """An image in the project's podman storage."""

    name: str
    """Fully qualified name, e.g. ``docker.io/library/hsm-agent:e2e``."""
    id: str
    """Image ID (hex, without ``sha256:``)."""
    size: int
    """Size in bytes as podman reports it (all layers, uncompressed)."""


@dataclasses.dataclass(frozen=True)
class AptSource:
    """One apt source: a ``deb`` line or a deb822 paragraph."""

    types: tuple[str, ...]
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class BaseRecipe:
    """Every input of the base image; its hash labels the image."""

    release: str
    packages: tuple[str, ...]
    mirror: str
    sources_list: str
    ca_certificates: tuple[tuple[str, bytes], ...]
    """(path relative to CA_DIR, contents) of each extra trusted certificate."""
    env: tuple[tuple[str, str], ...] = _BASE_ENV
    dpkg_excludes: str = _DPKG_EXCLUDES
    apt_conf: tuple[tuple[str, str], ...] = _APT_CONF
    steps: str = _BASE_STEPS


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


def release_sources(sources: list[AptSource], release: str = RELEASE) -> list[AptSource]:
    """The Debian sources of ``release``: binary, with a ``main`` component, suite ``release[-*]``."""
    return [
        dataclasses.replace(source, suites=suites)
        for source in sources
        if "deb" in source.types and "main" in source.components
        for suites in [tuple(s for s in source.suites if s == release or s.startswith(release + "-"))]
        if suites
    ]


def debian_mirror(sources: list[AptSource], release: str = RELEASE) -> str:
    """The URI debootstrap fetches ``release`` from: the first source carrying that exact suite."""
    for source in release_sources(sources, release):
        if release in source.suites:
            return source.uri
    raise ImageError(f"no Debian {release} source with a main component in the machine's apt sources")


def sources_list(sources: list[AptSource], release: str = RELEASE) -> str:
    """One-line ``sources.list`` text for the base image: the machine's sources of ``release``."""
    lines = [
        f"deb {source.uri} {suite} {' '.join(source.components)}\n"
        for source in release_sources(sources, release)
        for suite in source.suites
    ]
    return "".join(dict.fromkeys(lines))


def recipe_hash(recipe: BaseRecipe) -> str:
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


def base_recipe() -> BaseRecipe:
    """The base image's recipe on this machine (its apt sources and extra CA certificates)."""
    sources = host_sources()
    return BaseRecipe(
        release=RELEASE,
        packages=BASE_PACKAGES,
        mirror=debian_mirror(sources),
        sources_list=sources_list(sources),
        ca_certificates=ca_certificates(),
    )


def image_name(service: str, tag: str) -> str:
    """``docker.io/library/hsm-<service>:<tag>``: what containerd resolves ``hsm-<service>:<tag>`` to."""
    return f"docker.io/library/hsm-{service}:{tag}"


def archive_name(image: Image) -> str:
    """File name of an image's docker-archive: its name and ID, so a rebuilt image never reuses it."""
    return f"{_slug(image.name)}@{image.id[:16]}.tar"


def describe(image: Image, seconds: float) -> str:
    """The report line of one image: name, size, build time, short ID."""
    return f"{image.name:<40} {image.size / 1e6:7.1f} MB {seconds:7.1f} s  {image.id[:12]}"


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


def inspect(name: str) -> Image | None:
    """The image called ``name`` in the project's storage, or None."""
    data = _inspect(name)
    if data is None:
        return None
    return Image(name=name, id=str(data["Id"]), size=int(data["Size"]))


def base_image() -> Image:
    """The Python base, built by debootstrap unless an image of the same recipe exists."""
    recipe = base_recipe()
    digest = recipe_hash(recipe)
    cache = podman.cache_dir()
    with _locked(cache):
        if _label(BASE_IMAGE) != digest:
            started = time.monotonic()
            _log(f"{BASE_IMAGE}: debootstrap {RELEASE} (about 2 min; log: {_log_path('base')})")
            _build_base(recipe, digest, cache)
            _report(BASE_IMAGE, time.monotonic() - started)
    return _require(BASE_IMAGE)


def build(tag: str = "dev", agent_target: str | None = None) -> list[Image]:
    """Build the three service images as ``docker.io/library/hsm-<service>:<tag>`` (layers cached).

    ``agent_target`` names a stage of the agent's Dockerfile (``softhsm``: the agent with SoftHSM2). An
    image whose inputs (Dockerfile, arguments, base, the context files it copies) are unchanged is kept
    without running buildah, whose cache check alone takes seconds (it hashes the copied venv).
    """
    root = _repo_root()
    base = base_image()
    built = []
    for service in SERVICES:
        started = time.monotonic()
        name = image_name(service, tag)
        dockerfile = root / "services" / service / "Dockerfile"
        args = ["bud", "--layers", "--network", "host", "--pull=never"]
        args += ["--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "-f", str(dockerfile), "-t", name]
        if service == "agent" and agent_target is not None:
            args += ["--target", agent_target]
        parts = [("args", " ".join(args).encode()), ("base", base.id.encode())]
        digest = inputs_hash(parts + _context_inputs(root, dockerfile))
        # The inputs are recorded beside the image, not in a label: buildah drops --label when the last
        # step comes from its cache.
        stamp = podman.cache_dir() / "inputs" / f"{_slug(name)}.json"
        found = inspect(name)
        if found is None or _read_stamp(stamp) != {"inputs": digest, "id": found.id}:
            log = _log_path(f"{service}-{tag}")
            log.unlink(missing_ok=True)
            podman.buildah(*args, str(root), log=log)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"inputs": digest, "id": _require(name).id}))
        built.append(_report(name, time.monotonic() - started))
    return built


def pause_image() -> Image:
    """The sandbox image: the static ``pause`` binary of this package alone in a scratch image."""
    started = time.monotonic()
    work = podman.cache_dir() / "pause"
    with _locked(podman.cache_dir()):
        _build_pause(work)
    return _report(PAUSE_IMAGE, time.monotonic() - started)


def archive(image: Image) -> pathlib.Path:
    """A docker-archive of ``image`` for ``ctr images import``, saved once per image ID."""
    directory = podman.cache_dir() / "archives"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / archive_name(image)
    if path.exists():
        return path
    # Save beside the target and rename: a reader never sees half an archive, and parallel saves are harmless.
    fd, scratch = tempfile.mkstemp(dir=directory, prefix=".save-")
    os.close(fd)
    os.unlink(scratch)
    try:
        podman.run("save", "--format", "docker-archive", "-o", scratch, image.name)
        os.replace(scratch, path)
    finally:
        pathlib.Path(scratch).unlink(missing_ok=True)
    for older in directory.glob(f"{_slug(image.name)}@*.tar"):
        if older != path:
            older.unlink(missing_ok=True)
    return path


def _build_pause(work: pathlib.Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    binary = work / "pause"
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
    argv = [gobuild.go_binary(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), "."]
    _run(argv, _log_path("pause"), timeout=600.0, cwd=pathlib.Path(__file__).parent / "pause", env=env)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    if _label(PAUSE_IMAGE) != digest:
        layer = work / "pause.tar"
        with tarfile.open(layer, "w") as tar:
            info = tar.gettarinfo(str(binary), arcname="pause")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755
            info.mtime = 0
            with binary.open("rb") as data:
                tar.addfile(info, data)
        podman.run(
            "import",
            "--change",
            'ENTRYPOINT ["/pause"]',
            "--change",
            f"LABEL {RECIPE_LABEL}={digest}",
            str(layer),
            PAUSE_IMAGE,
        )
        layer.unlink()


def _context_inputs(root: pathlib.Path, dockerfile: pathlib.Path) -> list[tuple[str, bytes]]:
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


def _build_base(recipe: BaseRecipe, digest: str, cache: pathlib.Path) -> None:
    for stale in cache.glob("base-work-*"):
        _remove_tree(stale)
    work = pathlib.Path(tempfile.mkdtemp(dir=cache, prefix="base-work-"))
    try:
        rootfs = work / "rootfs"
        log = _log_path("base")
        log.unlink(missing_ok=True)
        packages = ",".join(recipe.packages)
        argv = ["debootstrap", "--variant=minbase", f"--include={packages}", recipe.release, str(rootfs)]
        _run([*argv, recipe.mirror], log, timeout=1800.0)
        _customise(rootfs, recipe, log)
        layer = work / "rootfs.tar"
        excludes = [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
        _run(["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(layer), "."], log, 600.0)
        changes = [f"ENV {key}={value}" for key, value in recipe.env]
        changes += [f"LABEL {RECIPE_LABEL}={digest}", 'CMD ["python3"]']
        podman.run(
            "import", *(arg for change in changes for arg in ("--change", change)), str(layer), BASE_IMAGE
        )
    finally:
        _remove_tree(work)


def _customise(rootfs: pathlib.Path, recipe: BaseRecipe, log: pathlib.Path) -> None:
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
    _run(["chroot", str(rootfs), "update-ca-certificates"], log, timeout=300.0, env=env)
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
        raise ImageError(f"{path} still has mounts below it; unmount them and retry")
    shutil.rmtree(path)


def _mounts_below(path: pathlib.Path) -> list[str]:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4].replace("\\040", " ") for line in mounts]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]


def _run(
    argv: list[str],
    log: pathlib.Path,
    timeout: float,
    cwd: pathlib.Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            code = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired as err:
            raise ImageError(f"{argv[0]} timed out after {timeout:.0f}s, see {log}") from err
    if code != 0:
        raise ImageError(
            f"{argv[0]} exited {code} (log: {log}):\n{podman.tail(log.read_text(errors='replace'))}"
        )


@contextlib.contextmanager
def _locked(cache: pathlib.Path) -> Iterator[None]:
    """Serialise the base and pause builds of one cache: they write fixed paths in it (debootstrap's work
    directory, the pause binary and layer), and a second session should wait rather than debootstrap again."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "images.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", name)


def _read_stamp(path: pathlib.Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _inspect(name: str) -> dict[str, Any] | None:
    proc = podman.run("image", "inspect", name, check=False, timeout=120.0)
    if proc.returncode != 0:
        return None
    found: list[dict[str, Any]] = json.loads(proc.stdout)
    return found[0] if found else None


def _label(name: str) -> str | None:
    data = _inspect(name)
    labels = (data or {}).get("Labels") or {}
    return labels.get(RECIPE_LABEL)


def _require(name: str) -> Image:
    found = inspect(name)
    if found is None:
        raise ImageError(f"{name} is missing from {podman.cache_dir()} right after it was built")
    return found


def _report(name: str, seconds: float) -> Image:
    image = _require(name)
    _log(describe(image, seconds))
    return image


def _log_path(name: str) -> pathlib.Path:
    return podman.cache_dir() / "logs" / f"{name}.log"


def _log(message: str) -> None:
    print(f"[devcluster images {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _repo_root() -> pathlib.Path:
    for parent in [*pathlib.Path(__file__).resolve().parents, pathlib.Path.cwd()]:
        if (parent / "services" / "agent" / "Dockerfile").is_file():
            return parent
    raise ImageError("no checkout with services/*/Dockerfile above this package or the working directory")
