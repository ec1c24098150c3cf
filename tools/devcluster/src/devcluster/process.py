"""Long-running child processes in their own process groups, started with logs and stopped by PID."""

import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Started:
    """A process this module started: enough to find and stop it again from another process."""

    name: str
    pid: int
    log: pathlib.Path
    argv0: str


def start(
    name: str,
    argv: Sequence[str],
    log: pathlib.Path,
    env: Mapping[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> Started:
    """Start ``argv`` as the leader of a new session, output appended to ``log``.

    A session of its own keeps terminal signals (Ctrl-C on `up`) away from it, and lets `stop` signal
    the whole group, children included.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Started(name=name, pid=proc.pid, log=log, argv0=str(argv[0]))


def _reap(pid: int) -> None:
    # Reap our own children so they do not linger as zombies (which os.kill(pid, 0) still sees).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(started: Started) -> bool:
    """Whether the process still runs and is the one we started (the PID was not reused)."""
    _reap(started.pid)
    try:
        cmdline = pathlib.Path(f"/proc/{started.pid}/cmdline").read_bytes()
        stat = pathlib.Path(f"/proc/{started.pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # A zombie ("Z") has exited; its cmdline is empty anyway.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and cmdline.split(b"\0", 1)[0].decode(errors="replace") == started.argv0


def stop(started: Started, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds; return once the leader is gone."""
    if not is_alive(started):
        return
    for sig, wait_for in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(started.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_for
        while time.monotonic() < deadline:
            if not is_alive(started):
                return
            time.sleep(0.05)
    raise RuntimeError(f"{started.name} (pid {started.pid}) survived SIGKILL")


def log_tail(started: Started, lines: int = 30) -> str:
    """The last lines of the process log, for error messages."""
    try:
        text = started.log.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
