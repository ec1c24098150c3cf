"""Processes started in their own group and stopped by PID."""

import pathlib
import sys

from devcluster import process, wait

# A parent that starts a child and both wait forever; the child's PID goes to stdout (the log).
_PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(3600)\n"
)


def _child_pid(log: pathlib.Path) -> int | None:
    text = log.read_text().strip()
    return int(text) if text else None


def test_stop_ends_the_process_and_its_children(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "p.log"
    started = process.start("parent", [sys.executable, "-c", _PARENT], log)
    child = wait.until(lambda: _child_pid(log), 10, "the child to start")
    assert process.is_alive(started)
    process.stop(started, grace=5)
    assert not process.is_alive(started)
    wait.until(lambda: not pathlib.Path(f"/proc/{child}").exists(), 10, "the child to be gone")


def test_a_reused_pid_is_not_mistaken_for_the_process(tmp_path: pathlib.Path) -> None:
    started = process.start("p", [sys.executable, "-c", "import time; time.sleep(3600)"], tmp_path / "p.log")
    impostor = process.Started("p", started.pid, started.log, started.argv, started.start_ticks - 1)
    assert not process.is_alive(impostor)
    process.stop(started)


def test_log_tail_shows_the_last_lines(tmp_path: pathlib.Path) -> None:
    started = process.start(
        "p", [sys.executable, "-c", "print('\\n'.join(map(str, range(50))))"], tmp_path / "p.log"
    )
    wait.until(lambda: not process.is_alive(started), 10, "the process to exit")
    assert process.log_tail(started, lines=2).splitlines() == ["48", "49"]
