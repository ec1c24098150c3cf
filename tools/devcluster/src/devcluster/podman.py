"""Podman and buildah with this project's configuration and storage under the cache, never the host's."""

import os
import pathlib
import string
import subprocess

_CONFIG_DIR = pathlib.Path(__file__).parent / "containers"
_TAIL_LINES = 40


class PodmanError(RuntimeError):
    """A podman or buildah command failed or timed out; the message carries the tail of its output."""


def cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/hsm-secrets-operator/containers`` (``~/.cache/…`` without XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "hsm-secrets-operator" / "containers"


def placeholders(root: pathlib.Path) -> dict[str, str]:
    """Values of the ``$name`` placeholders in the committed config templates, for a cache at ``root``."""
    return {
        "graphroot": str(root / "storage"),
        "runroot": str(root / "run"),
        "tmp_dir": str(root / "run" / "libpod"),
        "image_copy_tmp_dir": str(root / "tmp"),
        "network_config_dir": str(root / "networks"),
    }


def render(template: str, values: dict[str, str]) -> str:
    """Fill a config template; a placeholder without a value is an error, not an empty string."""
    return string.Template(template).substitute(values)


def environment() -> dict[str, str]:
    """``os.environ`` plus CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF.

    Renders the effective containers.conf and storage.conf into the cache and creates the directories they
    name, so podman and buildah started with this environment never touch the host's container storage.
    """
    root = cache_dir()
    values = placeholders(root)
    for path in values.values():
        pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    for name in ("containers.conf", "storage.conf"):
        _write_if_changed(etc / name, render((_CONFIG_DIR / name).read_text(), values))
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(etc / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(etc / "storage.conf")
    env["CONTAINERS_REGISTRIES_CONF"] = str(_CONFIG_DIR / "registries.conf")
    return env


def run(
    *args: str, check: bool = True, timeout: float = 600.0, log: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``podman <args>`` with :func:`environment`; raise :class:`PodmanError` if it fails and ``check``.

    With ``log`` its output goes to that file (appended) instead of being returned.
    """
    return _run("podman", args, check=check, timeout=timeout, log=log)


def buildah(
    *args: str, check: bool = True, timeout: float = 1800.0, log: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``buildah <args>`` with :func:`environment`; same contract as :func:`run`."""
    return _run("buildah", args, check=check, timeout=timeout, log=log)


def tail(text: str, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _write_if_changed(path: pathlib.Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _run(
    program: str, args: tuple[str, ...], check: bool, timeout: float, log: pathlib.Path | None
) -> subprocess.CompletedProcess[str]:
    argv = [program, *args]
    env = environment()
    try:
        if log is None:
            proc = subprocess.run(
                argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
            )
            output = proc.stderr or proc.stdout
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as out:
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                proc = subprocess.run(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout,
                )
            output = log.read_text(errors="replace")
    except subprocess.TimeoutExpired as err:
        where = f", see {log}" if log is not None else ""
        raise PodmanError(f"{program} {' '.join(args[:2])} timed out after {timeout:.0f}s{where}") from err
    if check and proc.returncode != 0:
        where = f" (log: {log})" if log is not None else ""
        raise PodmanError(f"{program} {' '.join(args[:2])} exited {proc.returncode}{where}:\n{tail(output)}")
    return proc
