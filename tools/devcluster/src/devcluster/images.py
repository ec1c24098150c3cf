"""The services' container images, built by Pants with podman on a locally debootstrapped base (no registry
needed).

Everything lives in podman's storage under the project cache (see :mod:`devcluster.podman`): the Python base
``localhost/hsm-python-base:bookworm``, the three service images named as a containerd kubelet looks them up
(``hsm-agent:<tag>`` in a manifest means ``docker.io/library/hsm-agent:<tag>``), the sandbox image, and the
docker-archive tarballs that ``ctr -n k8s.io images import`` loads.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from . import _buildlog, _debianbase, _imageerror, podman
from . import build as gobuild

BASE_IMAGE = "localhost/hsm-python-base:bookworm"
PAUSE_IMAGE = "docker.io/library/devcluster-pause:1"
SERVICES = ("agent", "discovery", "manager")
RECIPE_LABEL = "org.hsm-secrets-operator.recipe"
"""Label of the base and pause images: the hash of their inputs; equal hash, no rebuild."""

ImageError = _imageerror.ImageError
"""An image could not be built. Defined in a module of its own so that the private modules of the build
raise it without importing this one."""


@dataclasses.dataclass(frozen=True)
class Image:
    """An image in the project's podman storage."""

    name: str
    """Fully qualified name, e.g. ``docker.io/library/hsm-agent:e2e``."""
    id: str
    """Image ID (hex, without ``sha256:``)."""
    size: int
    """Size in bytes as podman reports it (all layers, uncompressed)."""


def image_name(service: str, tag: str) -> str:
    """``docker.io/library/hsm-<service>:<tag>``: what containerd resolves ``hsm-<service>:<tag>`` to."""
    return f"docker.io/library/hsm-{service}:{tag}"


def archive_name(image: Image) -> str:
    """File name of an image's docker-archive: its name and ID, so a rebuilt image never reuses it."""
    return f"{_slug(image.name)}@{image.id[:16]}.tar"


def describe(image: Image, seconds: float) -> str:
    """The report line of one image: name, size, build time, short ID."""
    return f"{image.name:<40} {image.size / 1e6:7.1f} MB {seconds:7.1f} s  {image.id[:12]}"


def inspect(name: str) -> Image | None:
    """The image called ``name`` in the project's storage, or None."""
    data = _inspect(name)
    if data is None:
        return None
    return Image(name=name, id=str(data["Id"]), size=int(data["Size"]))


def base_image() -> Image:
    """The Python base, built by debootstrap unless an image of the same recipe exists."""
    recipe = _debianbase.host_recipe()
    digest = _debianbase.recipe_hash(recipe)
    cache = podman.cache_dir()
    with _locked(cache):
        if _label(BASE_IMAGE) != digest:
            started = time.monotonic()
            log = _buildlog.path("base")
            _log(f"{BASE_IMAGE}: debootstrap {recipe.release} (about 2 min; log: {log})")
            _debianbase.build(recipe, BASE_IMAGE, f"{RECIPE_LABEL}={digest}", cache)
            _report(BASE_IMAGE, time.monotonic() - started)
    return _require(BASE_IMAGE)


def build(tag: str = "dev", agent_target: str | None = None) -> list[Image]:
    """Build the three service images as ``docker.io/library/hsm-<service>:<tag>`` with Pants.

    ``./pants package services/<service>:image`` builds each service's PEX and then its Dockerfile with
    podman, on the local base and in the project's storage; Pants reuses an unchanged PEX and podman its
    cached layers. ``agent_target`` names a stage of the agent's Dockerfile (``testtokens``: the agent with
    SoftHSM2 and the vpcd reader driver); the other Dockerfiles have no such stage and build as they are.
    """
    root = _repo_root()
    base_image()
    started = time.monotonic()
    argv = [str(root / "pants"), f"--docker-build-args=['VERSION={tag}', 'PYTHON_IMAGE={BASE_IMAGE}']"]
    if agent_target is not None:
        argv.append(f"--docker-build-target-stage={agent_target}")
    argv += ["package", *(f"services/{service}:image" for service in SERVICES)]
    log = _buildlog.path(f"images-{tag}")
    log.unlink(missing_ok=True)
    _log(f"./pants package {' '.join(argv[-len(SERVICES) :])} (log: {log})")
    _buildlog.run(argv, log, timeout=3600.0, cwd=root, env=podman.environment())
    seconds = time.monotonic() - started
    return [_report(image_name(service, tag), seconds) for service in SERVICES]


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
    source = pathlib.Path(__file__).parent / "pause"
    _buildlog.run(argv, _buildlog.path("pause"), timeout=600.0, cwd=source, env=env)
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


def _log(message: str) -> None:
    print(f"[devcluster images {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _repo_root() -> pathlib.Path:
    for parent in [*pathlib.Path(__file__).resolve().parents, pathlib.Path.cwd()]:
        if (parent / "services" / "agent" / "Dockerfile").is_file():
            return parent
    raise ImageError("no checkout with services/*/Dockerfile above this package or the working directory")
