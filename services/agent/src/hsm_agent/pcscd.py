"""Supervision of pcscd for modules that reach their tokens through PC/SC (OpenSC)."""

from __future__ import annotations

import logging
import pathlib
import signal
import socket
import subprocess
import threading
import time

log = logging.getLogger(__name__)

PCSCD = "/usr/sbin/pcscd"
SOCKET = "/run/pcscd/pcscd.comm"


class Supervisor:
    """Runs ``pcscd -f`` as a child, restarts it with backoff when it dies, stops it on request."""

    def __init__(
        self,
        binary: str = PCSCD,
        socket_path: str = SOCKET,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._binary = binary
        self._socket = pathlib.Path(socket_path)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        # Guards _process: the monitor thread replaces it while stop() may be signalling it.
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._monitor: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start pcscd and wait for its socket; raise TimeoutError when it does not appear."""
        self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="pcscd-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> None:
        with self._lock:
            self._process = subprocess.Popen([self._binary, "-f"], stdin=subprocess.DEVNULL)
            process = self._process
        log.info("pcscd started", extra={"pid": process.pid})
        deadline = time.monotonic() + self._start_timeout
        while not self._answers():
            if process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {process.returncode} before its socket appeared")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pcscd socket {self._socket} did not appear in {self._start_timeout}s")
            time.sleep(0.01)

    def _answers(self) -> bool:
        """True when the socket accepts connections (a killed pcscd leaves its socket file behind)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self._socket))
            except OSError:
                return False
        return True

    def _watch(self) -> None:
        backoff = self._min_backoff
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = self._min_backoff
            log.warning("pcscd died; restarting", extra={"exit_code": code, "backoff": backoff})
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)
            try:
                self._spawn()
                self.restarts += 1
            except (OSError, RuntimeError, TimeoutError) as error:
                log.error("pcscd restart failed", extra={"error": str(error)})

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after stop_timeout."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self._stop_timeout)
        if self._monitor is not None:
            self._monitor.join(timeout=self._stop_timeout)
