"""Benchmark of the agent against one SoftHSM2 token: throughput, latency and PKCS#11 calls per RPC.

Prints figures; not a test. The same reads are then done directly with python-pkcs11 as the floor.
Token store on tmpfs (/dev/shm) when present: on a shared disk SoftHSM2 creates are 20-50x slower.
Last, the same small set of calls against an agent process on SoftHSM2 and one on the emulated
SmartCard-HSM behind pcscd and OpenSC (``--card-only`` runs that part alone; it needs root).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pkcs11

from devcluster.schsm import sandbox
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


#: (figure, secrets on the token) → (p50, p99) in seconds, for the summary at the end.
RESULTS: dict[tuple[str, int], tuple[float, float]] = {}


def timed(
    name: str, count: int, call: Callable[[int], Any], pause: Callable[[], float] | None = None
) -> tuple[float, float]:
    """Call call(i) count times (sleeping pause() seconds before each, when given); returns (p50, p99)."""
    latencies = []
    busy = 0.0
    for i in range(count):
        if pause is not None:
            time.sleep(pause())
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
        busy += latencies[-1]
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"  {name:<38} {count / busy:9.0f}/s   p50 {p50 * 1000:7.2f} ms"
        f"   p99 {p99 * 1000:7.2f} ms   (n={count})"
    )
    return p50, p99


def drain(service: agent.Agent, timeout: float = 600.0) -> None:
    """Wait until the collector has destroyed every superseded object, so phases do not overlap."""
    waiting, t0 = service.store.garbage_pending(), time.perf_counter()
    while service.store.garbage_pending():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"the collector still had objects waiting after {timeout:.0f} s")
        time.sleep(0.05)
    if waiting:
        print(f"  background collection of {waiting} superseded objects: {time.perf_counter() - t0:.1f} s")


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
    drain(service)
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
        RESULTS["list", count] = timed(
            "ListSecrets (prefix bench/)",
            200,
            lambda i: stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="bench/")),
        )

        def page(i: int) -> object:
            # A page of 100 from anywhere in the listing: what one REST list page asks the agent for.
            after = rng.choice(paths)
            return stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="bench/", start_after=after, limit=101))

        RESULTS["page", count] = timed("ListSecrets (a page of 100, prefix bench/)", 1000, page)
        print(
            f"  PKCS#11 calls made by those GetChecksum+ListSecrets: {calls(service) - before:.0f} (target 0)"
        )
        timed(
            "ReadSecret (2 keys)",
            1000,
            lambda i: stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=rng.choice(paths))),
        )
        data = {"user": b"u", "password": b"p" * 24}

        def overwrite(i: int) -> None:
            request = hsm_pb2.WriteSecretRequest(
                path=rng.choice(paths), secret_data=hsm_pb2.SecretData(data=data)
            )
            stub.WriteSecret(request)

        RESULTS["overwrite", count] = timed("WriteSecret (overwrite, 2 keys)", 300, overwrite)
        drain(service)
        # Writes with gaps of 0-0.4 s: the background collector runs in the gaps, so some writes arrive
        # while it destroys an object (what a sustained but not saturating write load sees).
        RESULTS["paced", count] = timed(
            "WriteSecret (overwrite, gaps 0-0.4 s)", 60, overwrite, pause=lambda: rng.uniform(0, 0.4)
        )
        drain(service)
        keys = {f"k{j}": b"v%d" % j for j in range(5)}
        stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path="bench/five", secret_data=hsm_pb2.SecretData(data=keys))
        )
        before, finds = calls(service), calls(service, "find")
        stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="bench/five"))
        first = calls(service) - before
        before = calls(service)
        for _ in range(100):
            stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="bench/five"))
        per_read = (calls(service) - before) / 100
        print(
            f"  PKCS#11 calls of a 5-key secret's first ReadSecret: {first:.0f} (target 1: one record), "
            f"of each later one: {per_read:.1f} (target 0: the value read is kept); "
            f"finds: {calls(service, 'find') - finds:.0f} (target 0)"
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
    drain(service)  # objects superseded but not yet destroyed are no part of what a secret takes
    per_secret = (service.store.capacity().own_objects - before) / 10
    tombstones_before = service.store.capacity().own_objects
    for i in range(10):
        service.store.delete(f"objects/s-{i}")
    drain(service)
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
    RESULTS["floor held", count] = timed(
        "read 2 records through held handles",
        2000,
        lambda i: [obj[attribute.VALUE] for obj in rng.sample(values, 2)],
    )
    RESULTS["floor find", count] = timed(
        "find-by-label + read (1 record)",
        50 if count > 5000 else 200,
        lambda i: [o[attribute.VALUE] for o in session.get_objects({attribute.LABEL: rng.choice(labels)})],
    )
    session.close()
    lib.finalize()


CARD_PIN = "648219"
"""A SmartCard-HSM PIN has 6 to 16 characters."""
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
CARD_SECRETS = 20


def _agent_stub(box: sandbox.Sandbox, root: Path, name: str, env: dict[str, str], *options: str) -> Any:
    """An agent process in the sandbox (pcscd supervision as the module asks) and a stub once it is ready."""
    socket = root / f"{name}.sock"
    argv = [sys.executable, "-m", "hsm_agent", f"--listen=unix:{socket}", "--health-listen=127.0.0.1:0"]
    argv += ["--metrics-listen=", f"--pin-file={root / 'card-pin'}", "--probe-interval=3600", *options]
    process = box.start(argv, root / f"{name}.log", env=env)
    chan = grpc.insecure_channel(f"unix:{socket}", options=channel.channel_options())
    stub = channel.agent_stub(chan)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=2).connected:
                return process, chan, stub
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the {name} agent did not connect: {(root / f'{name}.log').read_text()[-2000:]}")


def _card_calls(name: str, stub: Any) -> dict[str, tuple[float, float]]:
    """The same calls on any token: new two-key secrets, then reads, lists, overwrites and deletes."""
    rng = random.Random(3)
    paths = [f"card/s-{i:02d}" for i in range(CARD_SECRETS)]
    data = {"user": b"u", "password": b"p" * 24}

    def write(path: str) -> None:
        stub.WriteSecret(hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)))

    print(f"\n{name}: agent process, sequential calls over a unix socket")
    return {
        "write new": timed("WriteSecret (new, 2 keys)", CARD_SECRETS, lambda i: write(paths[i])),
        "read": timed(
            "ReadSecret", 200, lambda i: stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=rng.choice(paths)))
        ),
        "list": timed("ListSecrets", 200, lambda i: stub.ListSecrets(hsm_pb2.ListSecretsRequest())),
        # A pause lets the collector destroy the superseded record between overwrites, as it would in use.
        "overwrite": timed(
            "WriteSecret (overwrite)", CARD_SECRETS, lambda i: write(paths[i]), pause=lambda: 0.5
        ),
        "delete": timed(
            "DeleteSecret",
            CARD_SECRETS,
            lambda i: stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path=paths[i])),
            pause=lambda: 0.5,
        ),
    }


def bench_card_paths(base: str | None) -> None:
    """SoftHSM2 and the emulated SmartCard-HSM (pcscd, vpcd, OpenSC) through the same agent calls."""
    reason = sandbox.missing()
    if reason:
        print(f"\nemulated card: skipped ({reason})")
        return
    with tempfile.TemporaryDirectory(dir=base, prefix="hsm-agent-bench-card-") as tmp:
        root = Path(tmp)
        (root / "card-pin").write_text(CARD_PIN + "\n")
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
        soft_env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
        init = ["softhsm2-util", "--init-token", "--free", "--label", "soft", "--pin", CARD_PIN]
        subprocess.run([*init, "--so-pin", "5678"], check=True, capture_output=True, timeout=30, env=soft_env)
        box = sandbox.Sandbox(root / "sandbox")
        box.open()
        serial = "BENCH00001"
        card = sandbox.Card(
            box,
            root / "card.json",
            root / "card.log",
            f"--serial={serial}",
            f"--pin-file={root / 'card-pin'}",
        )
        card.start()
        started: list[tuple[subprocess.Popen[str], grpc.Channel]] = []
        try:
            results = {}
            for name, env, options in (
                ("SoftHSM2", soft_env, (f"--pkcs11-library={MODULE}", "--token-label=soft")),
                (
                    "emulated SmartCard-HSM",
                    dict(os.environ),
                    (f"--pkcs11-library={OPENSC}", f"--serial={serial}"),
                ),
            ):
                process, chan, stub = _agent_stub(box, root, name.split()[-1].lower(), env, *options)
                started.append((process, chan))
                results[name] = _card_calls(name, stub)
            print(f"\nthe same calls, p50 / p99 in ms ({CARD_SECRETS} two-key secrets):")
            print(f"  {'call':<12} {'SoftHSM2':>20} {'emulated SmartCard-HSM':>26}")
            for call in results["SoftHSM2"]:
                cells = [
                    f"{results[n][call][0] * 1000:8.2f} / {results[n][call][1] * 1000:8.2f}" for n in results
                ]
                print(f"  {call:<12} {cells[0]:>20} {cells[1]:>26}")
        finally:
            for process, chan in started:
                chan.close()
                sandbox.stop(process, 15, group=True)
            card.stop()
            box.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--card-only", action="store_true", help="only SoftHSM2 vs the emulated card")
    args = parser.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a private mkdtemp below it
    if args.card_only:
        print(f"machine load {load()}")
        bench_card_paths(base)
        return
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
        print(f"token store: {root} ({'tmpfs' if base else 'disk'}); machine load {load()}")
        service = start(root)
        bench_objects(service)
        fill(service, 0, 100)
        bench_rpcs(service, 100)
        t0 = time.perf_counter()
        fill(service, 100, 1000)
        print(f"\nstore.write of 900 more secrets: {900 / (time.perf_counter() - t0):.0f}/s")
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
        summary()
    bench_card_paths(base)


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (1/5/15 min)".format(*os.getloadavg())


def summary() -> None:
    def ms(figure: str, count: int) -> str:
        p50, p99 = RESULTS[figure, count]
        return f"p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms"

    print("\nsummary (sequential calls over loopback gRPC):")
    for count in (100, 1000, 10_000):
        print(
            f"  overwrite at {count:>6,} secrets: {ms('overwrite', count)}"
            f"   with gaps 0-0.4 s: {ms('paced', count)}"
        )
    for figure in ("overwrite", "paced"):
        (p50_small, p99_small), (p50_large, p99_large) = RESULTS[figure, 100], RESULTS[figure, 10_000]
        print(
            f"  {figure} ratio 10,000/100: p50 {p50_large / p50_small:.2f}x  p99 {p99_large / p99_small:.2f}x"
            " (target <= 2x)"
        )
    print(f"  ListSecrets of 10,000: {ms('list', 10_000)} (target p50 <= 10 ms)")
    print(f"  ListSecrets, a page of 100 of 10,000: {ms('page', 10_000)} (100: {ms('page', 100)})")
    print(f"  floor, direct python-pkcs11 at 10,000: 2 reads through held handles {ms('floor held', 10_000)}")
    print(f"                                         find-by-label + read {ms('floor find', 10_000)}")
    print(f"  {load()}")


if __name__ == "__main__":
    main()
