"""Builds the control-plane binaries from Go modules into the version cache (idempotent, resumable)."""

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from . import gomod, versions

_GO_CANDIDATES = ("/usr/local/go/bin/go",)


class BuildError(RuntimeError):
    """A Go command failed; the message carries the tail of its output."""


def go_binary() -> str:
    """The Go toolchain: ``$GO``, then ``go`` on PATH, then the usual install location."""
    found = os.environ.get("GO") or shutil.which("go")
    if found:
        return found
    for candidate in _GO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise BuildError("no Go toolchain found: install Go or set $GO")


def binary_name(package: str) -> str:
    """``go build -o dir/`` names a binary after the last element of its package path."""
    return package.rstrip("/").rsplit("/", 1)[-1]


def target_binaries(target: versions.Target) -> list[str]:
    """Binary names a target produces."""
    return [binary_name(pkg) for pkg in target.packages]


def is_built(bin_dir: pathlib.Path) -> bool:
    """Whether every binary is present; installs are atomic, so presence means complete."""
    return all(os.access(bin_dir / name, os.X_OK) for name in versions.BINARIES)


def tools_source(packages: tuple[str, ...]) -> str:
    """A build-tagged file importing the commands, so ``go mod tidy`` records their dependencies."""
    imports = "\n".join(f'\t_ "{pkg}"' for pkg in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def _log(message: str) -> None:
    print(f"[devcluster build {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries: no C toolchain needed and nothing to break when system libraries change.
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env["GOFLAGS"] = env["GOFLAGS"] + " -mod=mod" if "-mod=" not in env["GOFLAGS"] else env["GOFLAGS"]
    return env


def _run(args: list[str], cwd: pathlib.Path, log_path: pathlib.Path, label: str) -> str:
    """Run a Go command, echoing a progress line every 100 output lines, keeping all of it in a log."""
    started = time.monotonic()
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(args)}\n")
        proc = subprocess.Popen(
            args, cwd=cwd, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        output: list[str] = []
        try:
            for count, line in enumerate(proc.stdout, start=1):
                log.write(line)
                output.append(line)
                if count % 100 == 0:
                    _log(f"{label}: {count} lines of go output, {time.monotonic() - started:.0f}s")
            code = proc.wait()
        except BaseException:
            # Ctrl-C or SIGTERM: do not leave a compiler running without anybody to read its output.
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        tail = "".join(output[-40:])
        raise BuildError(f"{label} failed ({' '.join(args[:3])}…), see {log_path}:\n{tail}")
    return "".join(output)


def _upstream_gomod(go: str, target: versions.Target, work: pathlib.Path, log: pathlib.Path) -> gomod.GoMod:
    out = _run([go, "mod", "download", "-json", f"{target.module}@{target.version}"], work, log, target.name)
    info = json.loads(out)
    if info.get("Error"):
        raise BuildError(f"go mod download {target.module}@{target.version}: {info['Error']}")
    return gomod.parse(pathlib.Path(info["GoMod"]).read_text())


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def build_target(target: versions.Target, bin_dir: pathlib.Path, build_root: pathlib.Path) -> None:
    """Build one target in its wrapper module and move its binaries into ``bin_dir`` atomically."""
    if all(os.access(bin_dir / name, os.X_OK) for name in target_binaries(target)):
        _log(f"{target.name}: cached")
        return
    go = go_binary()
    work = build_root / target.name
    work.mkdir(parents=True, exist_ok=True)
    log = build_root / f"{target.name}.log"
    _log(f"{target.name}: resolving {target.module}@{target.version} (log: {log})")
    upstream = _upstream_gomod(go, target, work, log)
    wrapper_module = f"devcluster.local/{target.name}"
    _write_if_changed(
        work / "go.mod", gomod.wrapper(upstream, target.version, target.sibling_version, wrapper_module)
    )
    if target.main_source is not None:
        _write_if_changed(work / "main.go", target.main_source)
    else:
        _write_if_changed(work / "tools.go", tools_source(target.packages))
    _run([go, "mod", "tidy"], work, log, target.name)
    _log(f"{target.name}: compiling {', '.join(target_binaries(target))}")
    started = time.monotonic()
    ldflags = " ".join(("-s", "-w", *target.ldflags))
    # Build into a scratch directory beside bin/ and rename into place: an interrupted build never
    # leaves a half-written binary that a later run would mistake for a finished one.
    with tempfile.TemporaryDirectory(dir=bin_dir.parent, prefix=".build-") as scratch:
        _run(
            [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", scratch + "/", *target.packages],
            work,
            log,
            target.name,
        )
        for name in target_binaries(target):
            os.replace(pathlib.Path(scratch) / name, bin_dir / name)
    _log(f"{target.name}: done in {time.monotonic() - started:.0f}s")


def build() -> pathlib.Path:
    """Build every binary that is missing from the cache and return the bin directory.

    Holds an exclusive lock on the version directory meanwhile: parallel test sessions on a cold cache
    wait for one build instead of compiling the same thing twice on a small machine.
    """
    bin_dir = versions.bin_dir()
    if is_built(bin_dir):
        return bin_dir
    bin_dir.mkdir(parents=True, exist_ok=True)
    version_dir = versions.version_dir()
    with (version_dir / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"another build holds {version_dir / 'build.lock'}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(bin_dir):
            return bin_dir
        # Scratch directories of an interrupted build (killed before its cleanup ran); the lock says
        # nobody else uses them.
        for stale in version_dir.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        build_root = version_dir / "build"
        build_root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for target in versions.targets():
            build_target(target, bin_dir, build_root)
        _log(f"all binaries in {bin_dir} ({time.monotonic() - started:.0f}s)")
    return bin_dir
