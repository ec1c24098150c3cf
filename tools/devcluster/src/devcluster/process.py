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
    argv: tuple[str, ...]
    """The command line, so the process can be started again (restart tests)."""
    start_ticks: int
    """Start time from /proc/<pid>/stat: with the PID it names the process even after the PID is reused."""


def start(
    name: str,
    argv: Sequence[str],
    log: pathlib.Path,
    env: Mapping[str, str] | None = None,
    cwd: pathlib.Path | None = None,
    pass_fds: Sequence[int] = (),
) -> Started:
    """Start ``argv`` as the leader of a new session, output appended to ``log``.

    A session of its own keeps terminal signals (Ctrl-C on `up`) away from it, and lets `stop` signal
    the whole group, children included. ``pass_fds`` stay open in the child (a lock it should hold).
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
            pass_fds=tuple(pass_fds),
        )
    # Our unreaped child cannot vanish or be replaced before this read.
    return Started(
        name=name, pid=proc.pid, log=log, argv=tuple(argv), start_ticks=_start_ticks(proc.pid) or 0
    )


def _reap(pid: int) -> None:
    # Reap our own children so they do not linger as zombies (which os.kill(pid, 0) still sees).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name, which is in parentheses and may contain spaces.
    return stat.rsplit(")", 1)[-1].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # starttime is field 22 of stat; fields[0] here is field 3 (state).
    return int(fields[19]) if fields else None


def is_alive(started: Started) -> bool:
    """Whether the process still runs and is the one we started (the PID was not reused).

    Identity is the start time, not the command line: between fork and exec a child still shows its
    parent's command line.
    """
    _reap(started.pid)
    fields = _stat_fields(started.pid)
    if fields is None or fields[0] == "Z":
        return False
    return int(fields[19]) == started.start_ticks


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
