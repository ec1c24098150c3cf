"""Crash consistency: SIGKILL a separate agent process at random instants during writes and deletes.

After every restart each secret reads as exactly one of the versions written to it, or as deleted (never a
mix of two, never older than the last acknowledged operation), and the leftovers are collected.
The token runs at its object budget: each secret is a record and three chunks, and the budget leaves
room for exactly one overwrite in flight, so no write may pass it and recovery must bring it back.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest

from devcluster import ports
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

KILLS = int(os.environ.get("CRASH_KILLS", "200"))
SECRETS = [f"ns/crash-{i}" for i in range(4)]
MAX_OBJECT = 1024
OBJECTS_PER_SECRET = 4
#: Every secret written, the tombstone ledger, and room for one overwrite's new generation beside the old one.
MAX_OBJECTS = len(SECRETS) * OBJECTS_PER_SECRET + 1 + OBJECTS_PER_SECRET


def payload(path: str, n: int) -> dict[str, bytes]:
    """Write number n of path: a small key and a large one (a record and three chunks), both tagged with n."""
    tag = f"{path}#{n}".encode()
    return {"small": tag, "large": (tag + b"|") * (2900 // (len(tag) + 1))}


class Zygote:
    def __init__(self, env: dict[str, str]) -> None:
        script = os.path.join(os.path.dirname(__file__), "agent_zygote.py")
        self.process = subprocess.Popen(
            [sys.executable, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def ask(self, line: str) -> int:
        assert self.process.stdin
        assert self.process.stdout
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=10)


@dataclasses.dataclass
class History:
    """Every operation attempted on each path, numbered from 1; what was acknowledged; what is live."""

    kinds: dict[str, list[str]] = dataclasses.field(default_factory=lambda: {p: [] for p in SECRETS})
    acked: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SECRETS, 0))
    live: dict[str, bool] = dataclasses.field(default_factory=lambda: dict.fromkeys(SECRETS, False))

    def attempted(self, path: str) -> int:
        return len(self.kinds[path])

    def total(self) -> int:
        return sum(len(kinds) for kinds in self.kinds.values())

    def in_flight(self) -> bool:
        return any(self.attempted(path) != self.acked[path] for path in SECRETS)


class Writer(threading.Thread):
    """Streams writes and deletes until the agent dies, recording them in the history."""

    def __init__(self, stub, history: History, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.stub, self.history, self.rng = stub, history, rng
        self.refused = False

    def run(self) -> None:
        history = self.history
        while True:
            path = self.rng.choice(SECRETS)
            kind = "d" if history.live[path] and self.rng.random() < 0.25 else "w"
            history.kinds[path].append(kind)
            n = history.attempted(path)
            try:
                if kind == "w":
                    data = hsm_pb2.SecretData(data=payload(path, n))
                    self.stub.WriteSecret(hsm_pb2.WriteSecretRequest(path=path, secret_data=data), timeout=5)
                else:
                    self.stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path=path), timeout=5)
            except grpc.RpcError as error:
                # The budget leaves room for every operation: a refusal would be a bug, not a crash.
                self.refused = error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return
            history.acked[path] = n
            history.live[path] = kind == "w"


def wait_connected(stub, deadline: float) -> None:  # type: ignore[no-untyped-def]
    while time.monotonic() < deadline:
        try:
            if stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=1).connected:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.01)
    raise AssertionError("agent did not become ready")


def check_reads(stub, history: History) -> None:  # type: ignore[no-untyped-def]
    """Each path is in the state of its last acknowledged operation or of the one in flight at the kill."""
    for path in SECRETS:
        acked, attempted, kinds = history.acked[path], history.attempted(path), history.kinds[path]
        try:
            read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path), timeout=5)
        except grpc.RpcError as error:
            read, code = None, error.code()
        if read is None:
            assert code == grpc.StatusCode.NOT_FOUND, (path, code)
            deletes = [n for n in (acked, attempted) if n and kinds[n - 1] == "d"]
            assert acked == 0 or deletes, f"{path}: deleted, but no delete since op {acked}"
            history.acked[path], history.live[path] = (deletes[-1] if deletes else 0), False
            continue
        data = dict(read.secret_data.data)
        n = int(data["small"].decode().rsplit("#", 1)[1])
        assert data == payload(path, n), f"{path}: a mix of versions"
        assert kinds[n - 1] == "w", (path, n)
        assert acked <= n <= attempted, (path, n, acked, attempted)
        history.acked[path], history.live[path] = n, True  # the new floor: later reads may not go back


def check_no_leftovers(softhsm, history: History) -> None:  # type: ignore[no-untyped-def]
    objects = softhsm.tool("list")
    records = sorted(o["label"].split("@")[0] for o in objects if o["app"].endswith("/record"))
    chunks = [o for o in objects if o["app"].endswith("/chunk")]
    ledgers = [o for o in objects if o["app"].endswith("/ledger")]
    assert records == sorted(path for path in SECRETS if history.live[path]), records
    assert len(chunks) == len(records) * (OBJECTS_PER_SECRET - 1), len(chunks)
    assert len(ledgers) <= 1, ledgers
    assert len(objects) <= MAX_OBJECTS - 1, len(objects)


@pytest.mark.slow
def test_sigkill_at_random_instants_never_leaves_a_mixed_or_lost_secret(softhsm) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    zygote = Zygote(softhsm.env())
    history = History()
    port = ports.free_port()
    args = (
        f"spawn --token-label {softhsm.label} --pin-file {softhsm.pin_file} --listen 127.0.0.1:{port} "
        f"--health-listen 127.0.0.1:0 --metrics-listen= --max-object-size {MAX_OBJECT} "
        f"--max-objects {MAX_OBJECTS} --log-level error"
    )
    killed_during_write = 0
    try:
        for kill in range(KILLS + 1):
            pid = zygote.ask(args)
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=channel.channel_options()) as chan:
                stub = channel.agent_stub(chan)
                wait_connected(stub, time.monotonic() + 20)
                check_reads(stub, history)
                if kill % 25 == 0:
                    check_no_leftovers(softhsm, history)
                if kill == KILLS:
                    os.kill(pid, signal.SIGTERM)
                    assert zygote.ask(f"reap {pid}") == 0
                    break
                writer = Writer(stub, history, rng)
                writer.start()
                time.sleep(rng.uniform(0.005, 0.12))
                os.kill(pid, signal.SIGKILL)
                zygote.ask(f"reap {pid}")
                writer.join(timeout=10)
                if writer.refused:
                    print("DBG", softhsm.tool("list"))
                    import subprocess as sp

                    print(
                        sp.run(["ls", "-laR", str(softhsm.tokendir)], capture_output=True, text=True).stdout
                    )
                assert not writer.refused, "a write within the budget was refused"
                killed_during_write += history.in_flight()
    finally:
        zygote.close()
    assert history.total() > KILLS * 3
    assert killed_during_write > KILLS // 2


def test_a_crash_with_garbage_pending_leaves_exactly_one_readable_generation(softhsm) -> None:
    """Superseded generations still waiting for the collector at a SIGKILL are collected by the next start."""
    zygote = Zygote(softhsm.env())
    port = ports.free_port()
    args = (
        f"spawn --token-label {softhsm.label} --pin-file {softhsm.pin_file} --listen 127.0.0.1:{port} "
        "--health-listen 127.0.0.1:0 --metrics-listen= --max-object-size 1024 --log-level error"
    )
    try:
        pid = zygote.ask(args + " --collect-idle 1h")  # nothing is collected before the kill
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=channel.channel_options()) as chan:
            stub = channel.agent_stub(chan)
            wait_connected(stub, time.monotonic() + 20)
            for n in range(1, 4):
                data = hsm_pb2.SecretData(data=payload("ns/a", n))
                stub.WriteSecret(hsm_pb2.WriteSecretRequest(path="ns/a", secret_data=data), timeout=5)
        os.kill(pid, signal.SIGKILL)
        zygote.ask(f"reap {pid}")
        objects = softhsm.tool("list")
        assert sum(o["app"].endswith("/record") for o in objects) == 3  # two generations were pending
        pid = zygote.ask(args)
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=channel.channel_options()) as chan:
            stub = channel.agent_stub(chan)
            wait_connected(stub, time.monotonic() + 20)
            read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/a"), timeout=5)
        objects = softhsm.tool("list")
        os.kill(pid, signal.SIGTERM)
        assert zygote.ask(f"reap {pid}") == 0
    finally:
        zygote.close()
    assert (dict(read.secret_data.data), read.version) == (payload("ns/a", 3), 3)
    assert sum(o["app"].endswith("/record") for o in objects) == 1
    assert sum(o["app"].endswith("/chunk") for o in objects) == OBJECTS_PER_SECRET - 1
