"""Benchmark of the agent against one SoftHSM2 token: throughput, latency and PKCS#11 calls per RPC.

Prints figures; not a test. The same reads are then done directly with python-pkcs11 as the floor.
Token store on tmpfs (/dev/shm) when present: on a shared disk SoftHSM2 creates are 20-50x slower.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pkcs11

from hsm_agent import agent
from hsm_agent.store import budget, layout, secret_store
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"


def calls(service: agent.Agent, operation: str | None = None) -> float:
    """PKCS#11 calls so far (probes left out), optionally of one operation."""
    return sum(
        sample.value
        for metric in service.metrics.pkcs11_calls.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels["operation"] != "probe"
        and (operation is None or sample.labels["operation"] == operation)
    )


def timed(name: str, count: int, call: Callable[[int], Any]) -> None:
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"  {name:<34} {count / total:9.0f}/s   p50 {statistics.median(latencies) * 1000:7.2f} ms"
        f"   p99 {p99 * 1000:7.2f} ms   (n={count})"
    )


def start(root: Path) -> agent.Agent:
    config = agent.AgentConfig(
        store=secret_store.StoreConfig(
            library_path=MODULE,
            pin_file=str(root / "pin"),
            token_label="bench",  # noqa: S106 - a token label, not a password
            probe_interval=3600.0,
            rescan_interval=3600.0,
        ),
        listen="127.0.0.1:0",
        health_listen="127.0.0.1:0",
    )
    service = agent.Agent(config)
    service.start()
    if not service.wait_ready(600):
        raise SystemExit(f"agent not ready: {service.store.message}")
    return service


def fill(service: agent.Agent, start_at: int, stop_at: int) -> None:
    for i in range(start_at, stop_at):
        service.store.write(f"bench/s-{i:05d}", {"user": b"u%d" % i, "password": os.urandom(24)}, None)


def bench_rpcs(service: agent.Agent, count: int) -> None:
    rng = random.Random(1)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}", options=channel.channel_options()) as chan:
        stub = channel.agent_stub(chan)
        paths = [f"bench/s-{i:05d}" for i in range(count)]
        print(f"\n{count} secrets on the token (2 keys each), sequential calls over loopback gRPC:")
        before = calls(service)
        timed(
            "GetChecksum",
            2000,
            lambda i: stub.GetChecksum(hsm_pb2.GetChecksumRequest(path=rng.choice(paths))),
        )
        timed(
            "ListSecrets (prefix bench/)",
            20 if count > 5000 else 100,
            lambda i: stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="bench/")),
        )
        print(
            f"  PKCS#11 calls made by those GetChecksum+ListSecrets: {calls(service) - before:.0f} (target 0)"
        )
        timed(
            "ReadSecret (2 keys)",
            1000,
            lambda i: stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=rng.choice(paths))),
        )
        data = {"user": b"u", "password": b"p" * 24}
        timed(
            "WriteSecret (overwrite, 2 keys)",
            300 if count <= 5000 else 20,
            lambda i: stub.WriteSecret(
                hsm_pb2.WriteSecretRequest(path=rng.choice(paths), secret_data=hsm_pb2.SecretData(data=data))
            ),
        )
        keys = {f"k{j}": b"v%d" % j for j in range(5)}
        stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path="bench/five", secret_data=hsm_pb2.SecretData(data=keys))
        )
        stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="bench/five"))
        before, finds = calls(service), calls(service, "find")
        for _ in range(100):
            stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="bench/five"))
        per_read = (calls(service) - before) / 100
        print(
            f"  PKCS#11 calls per ReadSecret of a 5-key secret: {per_read:.1f} (target 1: one record); "
            f"finds after warm-up: {calls(service, 'find') - finds:.0f} (target 0)"
        )


#: Format v1 (a head plus one object per key), measured at commit d0b7cbb: a two-key secret took 3 objects
#: and a deleted one kept a tombstone object for a week.
V1_OBJECTS_PER_TWO_KEY_SECRET = 3
OPENSC_OBJECT_LIMIT = 128


def bench_objects(service: agent.Agent) -> None:
    """Objects a two-key secret takes on the token, and how many fit where OpenSC allows 128."""
    before = service.store.capacity().own_objects
    for i in range(10):
        service.store.write(f"objects/s-{i}", {"username": b"user", "password": os.urandom(24)}, None)
    per_secret = (service.store.capacity().own_objects - before) / 10
    tombstones_before = service.store.capacity().own_objects
    for i in range(10):
        service.store.delete(f"objects/s-{i}")
    per_delete = (service.store.capacity().own_objects - tombstones_before) / 10
    under_budget = budget.OPENSC_MAX_OBJECTS - budget.RESERVE - budget.LEDGER_RESERVE
    print(
        f"\nobjects per two-key secret: {per_secret:.1f} (format v1: {V1_OBJECTS_PER_TWO_KEY_SECRET}); "
        f"objects per delete: {per_delete:+.1f} (format v1: one tombstone kept a week)"
    )
    print(
        f"  two-key secrets in {OPENSC_OBJECT_LIMIT} objects: {int(OPENSC_OBJECT_LIMIT // per_secret)} "
        f"(format v1: {OPENSC_OBJECT_LIMIT // V1_OBJECTS_PER_TWO_KEY_SECRET}); under the default OpenSC "
        f"budget of {budget.OPENSC_MAX_OBJECTS}, with room for an overwrite and the ledger: "
        f"{int(under_budget // per_secret)}"
    )


def bench_direct(root: Path, count: int) -> None:
    """The floor: the same reads straight through python-pkcs11 in this process."""
    lib = pkcs11.lib(MODULE)
    lib.reinitialize()
    token = lib.get_token(token_label="bench")  # noqa: S106 - a token label
    session = token.open(rw=True, user_pin=PIN)
    attribute = pkcs11.Attribute
    values = list(
        session.get_objects(  # type: ignore[call-arg]  # the stub lacks batch_size
            {attribute.CLASS: pkcs11.ObjectClass.DATA, attribute.APPLICATION: layout.APPLICATION_RECORD},
            batch_size=1024,
        )
    )
    labels = [obj[attribute.LABEL] for obj in values]
    rng = random.Random(2)
    print(f"\ndirect python-pkcs11 on the same token ({len(values)} records):")
    timed(
        "read 2 records through held handles",
        2000,
        lambda i: [obj[attribute.VALUE] for obj in rng.sample(values, 2)],
    )
    timed(
        "find-by-label + read (1 record)",
        50 if count > 5000 else 200,
        lambda i: [o[attribute.VALUE] for o in session.get_objects({attribute.LABEL: rng.choice(labels)})],
    )
    session.close()
    lib.finalize()


def main() -> None:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a private mkdtemp below it
    with tempfile.TemporaryDirectory(dir=base, prefix="hsm-agent-bench-") as tmp:
        root = Path(tmp)
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        os.environ["SOFTHSM2_CONF"] = str(conf)
        (root / "pin").write_text(PIN)
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", "5678"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        print(f"token store: {root} ({'tmpfs' if base else 'disk'}); machine load {os.getloadavg()[0]:.1f}")
        service = start(root)
        bench_objects(service)
        t0 = time.perf_counter()
        fill(service, 0, 1000)
        print(f"store.write of 1,000 new secrets: {1000 / (time.perf_counter() - t0):.0f}/s")
        bench_rpcs(service, 1000)
        t0 = time.perf_counter()
        fill(service, 1000, 10_000)
        print(f"\nstore.write of 9,000 more secrets: {9000 / (time.perf_counter() - t0):.0f}/s")
        service.stop()
        t0 = time.perf_counter()
        service = start(root)
        print(
            f"agent start-up with 10,000 secrets (login, full scan, verify, index): "
            f"{time.perf_counter() - t0:.2f} s"
        )
        bench_rpcs(service, 10_000)
        service.stop()
        bench_direct(root, 10_000)


if __name__ == "__main__":
    main()
