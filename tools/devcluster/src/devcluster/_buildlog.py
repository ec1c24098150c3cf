"""Build steps run as commands whose output goes to a log in the project cache, one log per step."""

import pathlib
import subprocess

from . import _imageerror, podman


def path(name: str) -> pathlib.Path:
    """The log of the build step ``name`` under the project cache."""
    return podman.cache_dir() / "logs" / f"{name}.log"


def run(
    argv: list[str],
    log: pathlib.Path,
    timeout: float,
    cwd: pathlib.Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``argv`` with its output appended to ``log``; an ImageError quoting the log's tail if it fails."""
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
            raise _imageerror.ImageError(f"{argv[0]} timed out after {timeout:.0f}s, see {log}") from err
    if code != 0:
        raise _imageerror.ImageError(
            f"{argv[0]} exited {code} (log: {log}):\n{podman.tail(log.read_text(errors='replace'))}"
        )
