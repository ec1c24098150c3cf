"""A private network and mount namespace where pcscd sees one reader, vpcd, and the emulated card sits in it.

Inside: loopback up (vpcd listens on 0.0.0.0:35963, which there is the namespace's own), a tmpfs on
/run/pcscd (so pcscd's socket never meets another pcscd's, and several sandboxes run at once), and
/etc/reader.conf.d replaced by a directory naming vpcd only. A holder process keeps the namespaces alive
until its stdin closes; everything else is started in them with nsenter, by PID, and stopped by PID.
Needs root (unshare, mount).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Protocol

from . import vpcd

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

_READER_CONF = f"""FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x{vpcd.PORT:04X}
LIBPATH      {VPCD_DRIVER}
CHANNELID    0x{vpcd.PORT:04X}
"""

# Runs inside the new namespaces: set them up, say so, then hold them until stdin closes.
_HOLDER = """set -e
ip link set lo up
mkdir -p /run/pcscd
mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
mount --bind "$1" /etc/reader.conf.d
echo ready
exec cat >/dev/null
"""


def missing() -> str | None:
    """Why a sandbox cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "namespaces and mounts need root"
    if not os.path.exists(VPCD_DRIVER):
        return "vsmartcard-vpcd is not installed (scripts/apt.sh)"
    for tool in ("unshare", "nsenter", "ip", "pcscd"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in (*os.get_exec_path(), "/usr/sbin")):
            return f"{tool} is not installed"
    return None


def _signal(process: subprocess.Popen[str], signum: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def stop(process: subprocess.Popen[str], timeout: float, group: bool = False) -> None:
    """SIGTERM (to its process group when ``group``), then SIGKILL after timeout; reaped either way."""
    if process.poll() is None:
        _signal(process, signal.SIGTERM, group)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    # Killed or exited, its group may still hold children (pcscd under the agent).
    if group:
        _signal(process, signal.SIGKILL, group)
    if process.poll() is None:
        process.kill()
        process.wait(timeout)


def launch(
    argv: Sequence[str],
    log: pathlib.Path,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = None,
) -> subprocess.Popen[str]:
    """Start ``argv`` as the leader of a new process group, stderr (and stdout unless given) to ``log``."""
    with log.open("a") as err:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout if stdout is not None else err,
            stderr=err,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            text=True,
        )


def _read_line(stream: IO[str], timeout: float, what: str) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no answer from {what} in {timeout}s")
    return stream.readline().strip()


class Sandbox:
    """The namespaces, held by one process; start programs in them with ``start``."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self._holder: subprocess.Popen[str] | None = None

    def open(self, timeout: float = 10.0) -> None:
        readers = self.root / "reader.conf.d"
        readers.mkdir(parents=True, exist_ok=True)
        (readers / "vpcd").write_text(_READER_CONF)
        self._holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _HOLDER,
                "sh",
                str(readers),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        answer = _read_line(self._holder.stdout, timeout, "the namespace holder")
        if answer != "ready":
            self.close()
            raise RuntimeError(f"the namespace holder failed to set up (exit {self._holder.poll()})")

    @property
    def pid(self) -> int:
        if self._holder is None:
            raise RuntimeError("the sandbox is not open")
        return self._holder.pid

    def enter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespaces, in this process's working directory (entering a mount
        namespace would otherwise start it in /); nsenter execs it, so the process's PID is argv's."""
        return ["nsenter", f"--target={self.pid}", "--net", "--mount", f"--wd={os.getcwd()}", "--", *argv]

    def start(
        self,
        argv: Sequence[str],
        log: pathlib.Path,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> subprocess.Popen[str]:
        """Start ``argv`` in the namespaces as the leader of a new process group, stderr to ``log``."""
        return launch(self.enter(argv), log, env, stdin, stdout)

    def processes(self) -> list[int]:
        """PIDs of every process in the sandbox's network namespace but the holder (ours by construction)."""
        try:
            mine = os.readlink(f"/proc/{self.pid}/ns/net")
        except OSError:
            return []
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.pid:
                continue
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "net") == mine:
                    found.append(int(entry.name))
        return found

    def close(self, timeout: float = 10.0) -> None:
        """Kill what is left inside (by PID), then let the holder go: the namespaces end with it."""
        if self._holder is None:
            return
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._holder.stdin is not None:
            self._holder.stdin.close()
        stop(self._holder, timeout)
        if self._holder.stdout is not None:
            self._holder.stdout.close()


class Launcher(Protocol):
    """Starts a program where its card or reader lives (a Sandbox, a devcluster node's network)."""

    def start(
        self,
        argv: Sequence[str],
        log: pathlib.Path,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> subprocess.Popen[str]: ...


class Card:
    """The emulated card as a process started by a launcher, steered through its stdin (``--control``)."""

    def __init__(self, sandbox: Launcher, state: pathlib.Path, log: pathlib.Path, *options: str) -> None:
        self._sandbox = sandbox
        self._argv = [sys.executable, "-m", "devcluster.schsm", "--state", str(state), "--control", *options]
        self._log = log
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the card; returns once its flash file exists (it enters the reader when vpcd listens)."""
        self.process = self._sandbox.start(
            self._argv, self._log, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        answer = _read_line(self.process.stdout, timeout, "the card")
        if answer != "ready":
            tail = self._log.read_text()[-2000:] if self._log.exists() else ""
            raise RuntimeError(f"the card did not start (exit {self.process.poll()}):\n{tail}")

    def _ask(self, command: str, answer: str, timeout: float) -> None:
        process = self.process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the card is not running")
        process.stdin.write(command + "\n")
        process.stdin.flush()
        got = _read_line(process.stdout, timeout, "the card")
        if got != answer:
            raise RuntimeError(f"the card answered {got!r} to {command!r}")

    def remove(self, timeout: float = 10.0) -> None:
        """Take the card out of the reader (it closes its connection to vpcd)."""
        self._ask("remove", "removed", timeout)

    def insert(self, timeout: float = 10.0) -> None:
        """Put the card back; returns once connected to vpcd (which may drop a connection made before it
        noticed the removal: the card then connects again)."""
        self._ask("insert", "inserted", timeout)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the card process: the card is pulled wherever it was in a command."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        stop(self.process, timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
