"""The emulated-card stack as tests drive it: the card's sandbox, the agent process, the card's flash.

Real: the agent process (``python -m hsm_agent`` with pcscd supervision on, as in production), OpenSC
0.23's PKCS#11 module with its sc-hsm driver and PKCS#15 emulation, pcscd and its vpcd reader driver.
Emulated (devcluster.schsm): the card, that is its PIN and file commands, its flash (a file here), a 4K
device's capacity and APDU buffer, and its presence in the reader (the emulator's TCP connection to vpcd).
All of it runs in private network and mount namespaces of the test (devcluster.schsm.sandbox): vpcd's
port and pcscd's socket are its own, and the test reaches the agent on a unix socket in its directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time

import grpc

from devcluster.schsm import flash, sandbox
from hsmproto import channel
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
PIN = "648219"
"""A SmartCard-HSM user PIN has 6 to 16 characters."""
SERIAL = "EMU00000001"
"""The card's serial: OpenSC reads it from the device certificate, and the agent picks the token by it."""


@dataclasses.dataclass
class CardStack:
    """One emulated card in its sandbox, and the agent process serving it (restartable)."""

    root: pathlib.Path
    sandbox: sandbox.Sandbox
    card: sandbox.Card
    state: pathlib.Path
    pin_file: pathlib.Path
    socket: pathlib.Path
    agent: subprocess.Popen[str] | None = None
    channels: list[grpc.Channel] = dataclasses.field(default_factory=list)

    @property
    def agent_log(self) -> pathlib.Path:
        return self.root / "agent.log"

    def restart_card(self, *options: str, kill: bool = False) -> None:
        """Stop (or SIGKILL) the card process, start another on the same flash file: a power cycle out of
        the reader."""
        if kill:
            self.card.kill()
        self.card.stop()
        self.card = sandbox.Card(self.sandbox, self.state, self.root / "card.log", *options)
        self.card.start()

    def new_card(self, *options: str) -> None:
        """Replace the card by a new one (initialised with the PIN) made with ``options`` (``--capacity``)."""
        self.card.stop()
        self.state.unlink(missing_ok=True)
        self.restart_card(f"--serial={SERIAL}", f"--pin-file={self.pin_file}", *options)

    def start_agent(self, *options: str) -> subprocess.Popen[str]:
        """Start ``python -m hsm_agent`` in the sandbox (the PIN from its file, never in argv)."""
        argv = [
            sys.executable,
            "-m",
            "hsm_agent",
            f"--pkcs11-library={MODULE}",
            f"--serial={SERIAL}",
            f"--pin-file={self.pin_file}",
            f"--listen=unix:{self.socket}",
            "--health-listen=127.0.0.1:0",
            "--metrics-listen=",
            "--probe-interval=0.5",
            *options,
        ]
        self.agent = self.sandbox.start(argv, self.agent_log)
        return self.agent

    def kill_agent(self, timeout: float = 10.0) -> None:
        """SIGKILL the agent and its pcscd together, as a pod's end would; returns once both are reaped.

        A pcscd killed but not yet reaped still counts as running for the next one, which then refuses to
        start (a new pod would not see it: its /run is new).
        """
        assert self.agent is not None
        group = []
        for pid in self.sandbox.processes():
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == self.agent.pid:
                    group.append(pid)
        os.killpg(self.agent.pid, signal.SIGKILL)
        self.agent.wait(timeout)
        deadline = time.monotonic() + timeout
        while any(os.path.exists(f"/proc/{pid}") for pid in group):
            if time.monotonic() > deadline:
                raise AssertionError(f"processes {group} of the killed agent were not reaped in {timeout}s")
            time.sleep(0.02)

    def start_stub(self, *options: str) -> hsm_pb2_grpc.HSMAgentStub:
        """Start the agent and return a stub on a channel closed at teardown (the agent may not be ready)."""
        self.start_agent(*options)
        chan = grpc.insecure_channel(f"unix:{self.socket}", options=channel.channel_options())
        self.channels.append(chan)
        return channel.agent_stub(chan)

    def ready_stub(self, *options: str) -> hsm_pb2_grpc.HSMAgentStub:
        """Start the agent and return a stub once it is connected to the card (its logs when it is not)."""
        stub = self.start_stub(*options)
        try:
            wait_connected(stub)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.log_tail()}") from None
        return stub

    def stop_agent(self) -> None:
        if self.agent is not None:
            sandbox.stop(self.agent, 15, group=True)

    def memory(self) -> flash.Memory:
        """The card's flash as it is now (the emulator replaces the file whole on every change)."""
        return flash.Flash(self.state).load()

    def data_files(self, prefix: int) -> dict[int, bytes]:
        return {fid: data for fid, data in self.memory().files.items() if fid >> 8 == prefix}

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for log in (self.agent_log, self.root / "card.log"):
            if log.exists():
                parts.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:]))
        return "\n".join(parts)


def wait_connected(stub: hsm_pb2_grpc.HSMAgentStub, timeout: float = 60.0) -> None:
    """Return once the agent says it is connected to its token (logged in, index loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=2).connected:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the agent did not connect within {timeout}s")
