"""REST API benchmark: gunicorn on 127.0.0.1, SoftHSM2-backed agents, load from wrk.

Two HSMDevices: "bench" with one agent (GET secret and list, comparable with earlier runs, and a list of the
first 100 of the 10,000 secrets of another namespace) and "pair" with two agents on two tokens (GET of a
mirrored secret, PUT mirrored to both devices). Each phase prints its
rate with p50/p99 and errors (any socket error or status >= 400), its ratio to a floor measured in the
same run, the server's CPU per request split into the API (gunicorn master and workers) and the agents
(with the rate that CPU cost allows on this machine's cores: it holds steady where the throughput swings
with whatever else the machine runs), and the machine's load average when the phase ended.

Floors: GET /health (gunicorn and Flask, no authorization, no agent) for the reads; for the PUT, one
agent's own overwrite rate: WriteSecret overwrites of the same paths straight over gRPC against one agent
of the pair, as many in flight as wrk has connections. Targets (issue #17): GET secret >= 0.3 of health
with p99 <= 25 ms, list >= 0.2 of health, PUT to two devices >= 0.8 of the agent's overwrites.

Authentication uses the static table of the integration tests at the Deps seam (review results are cached
for 30 s in production, so a steady load pays the same as here). The load comes from wrk (Debian package,
installed by scripts/apt.sh), a native generator: a Python client on the same two cores took a third of them.

Both transports in one run: the API serves HTTPS, as it does in a cluster (a leaf of a throwaway CA, as the
operator issues one), and a second server with the same workers serves the debugging-only plain HTTP. Each
phase runs over HTTP, HTTPS, HTTPS, HTTP for half its time each, so both see the same machine, and a machine
that gets faster or slower meanwhile weighs on both alike; each transport has its own /health floor. wrk
keeps its connections open, so a phase pays the handshake once per connection and TLS per request after;
the "GET health, new conn." phase sends Connection: close, so every request pays a TCP connection (and over
HTTPS a full handshake). The table at the end puts the two side by side: req/s, p99, the API's CPU per
request and the HTTPS/HTTP ratio.

Run: uv run python bench/api.py [--seconds 8] [--connections 8] [--workers 4] [--threads 1]
     [--read-copies-mib N]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import importlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import requests

from hsm_manager.gateway import pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

ROOT = pathlib.Path(__file__).resolve().parents[1]
HARNESS = ROOT / "services" / "manager" / "tests" / "api" / "conftest.py"
SCRIPT = pathlib.Path(__file__).with_name("api.lua")
#: (label, wrk phase, HSMDevice). The floor first: /health passes through gunicorn and Flask but no
#: authorization and no agent, so it is the most this server can answer on this machine right now; each
#: read's ratio to it is comparable across runs where the absolute rates are not.
READS = (
    ("GET health", "health", "bench"),
    ("GET health, new conn.", "health-close", "bench"),
    ("GET secret", "get", "bench"),
    ("GET secret, 2 devices", "get", "pair"),
    ("GET list (100)", "list", "bench"),
    ("GET list (100 of 10k)", "list-crowd", "bench"),
)
#: The transports: label → serves HTTPS.
TRANSPORTS = {"HTTP": False, "HTTPS": True}
TRANSPORT_ORDER = tuple(TRANSPORTS)
PUT = ("PUT, 2 devices", "put", "pair")
#: wrk's threads: each PUTs its own WRITE_PATHS paths (see api.lua).
WRK_THREADS = 2
WRITE_PATHS = 200
#: Secrets of the namespace "crowd" on the bench device: a page of it costs what a page of "bench" does
#: only when a page is read without the rest of the namespace.
CROWD = 10_000
VALUE = base64.b64encode(b"x" * 64).decode()


def _harness() -> types.ModuleType:
    # The harness is a conftest inside the tests tree and imports its siblings relatively (..polling):
    # load it as a module of a package standing for that tree.
    tests = types.ModuleType("api_bench_tests")
    tests.__path__ = [str(HARNESS.parents[1])]
    sys.modules[tests.__name__] = tests
    return importlib.import_module(f"{tests.__name__}.api.conftest")


def _children(pid: int) -> list[int]:
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while scanning
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _settle(pids: list[int], timeout: float = 60.0) -> None:
    """Wait until the processes use under 5% of a core: an agent may still be collecting old generations
    of an earlier phase's writes, which the next phase would otherwise pay for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _cpu_seconds(pids)
        time.sleep(0.5)
        if _cpu_seconds(pids) - before < 0.025:
            return


@dataclasses.dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def and_(self, other: Result) -> Result:
        """This run and other as one: rates over both, p50 weighted by requests, the higher p99."""
        requests = self.requests + other.requests
        p50 = (self.p50_ms * self.requests + other.p50_ms * other.requests) / max(requests, 1)
        return Result(
            requests,
            self.seconds + other.seconds,
            p50,
            max(self.p99_ms, other.p99_ms),
            self.errors + other.errors,
        )


def _wrk(url: str, phase: str, device: str, seconds: float, connections: int) -> Result:
    command = [
        "wrk", "--threads", str(WRK_THREADS), "--connections", str(connections),
        "--duration", f"{seconds:.0f}s", "--timeout", "30s", "--script", str(SCRIPT),
        url, "--", phase, device,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    r = json.loads(output.strip().splitlines()[-1])
    return Result(r["requests"], r["duration_us"] / 1e6, r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"])


def _write_paths() -> list[str]:
    return [f"bench/w{thread}-{i:03d}" for thread in range(WRK_THREADS) for i in range(WRITE_PATHS)]


def _overwrites(address: str, paths: list[str], seconds: float, inflight: int) -> Result:
    """WriteSecret overwrites straight over gRPC, inflight at a time, each slot cycling its own paths."""
    stub = channel.agent_stub(channel.open_channel(address))
    latencies: list[list[float]] = [[] for _ in range(inflight)]
    errors = [0] * inflight
    deadline = time.monotonic() + seconds

    def slot(index: int) -> None:
        mine = paths[index::inflight]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            data = {"password": VALUE.encode(), "n": f"{n:08d}".encode()}
            request = hsm_pb2.WriteSecretRequest(
                path=mine[n % len(mine)], secret_data=hsm_pb2.SecretData(data=data), writer="bench"
            )
            started = time.perf_counter()
            try:
                stub.WriteSecret(request, timeout=30)
            except grpc.RpcError:
                errors[index] += 1
            latencies[index].append(time.perf_counter() - started)

    started = time.perf_counter()
    with futures.ThreadPoolExecutor(inflight) as pool:
        list(pool.map(slot, range(inflight)))
    elapsed = time.perf_counter() - started
    every = sorted(latency for per_slot in latencies for latency in per_slot)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
    return Result(len(every), elapsed, statistics.median(every) * 1000, p99 * 1000, sum(errors))


def _seed_crowd(address: str) -> None:
    """CROWD secrets in the namespace crowd, written straight to the agent (the REST API would take
    minutes)."""
    stub = channel.agent_stub(channel.open_channel(address))
    data = {"password": VALUE.encode()}

    def write(i: int) -> None:
        request = hsm_pb2.WriteSecretRequest(
            path=f"crowd/s{i:05d}", secret_data=hsm_pb2.SecretData(data=data), writer="bench"
        )
        stub.WriteSecret(request, timeout=30)

    with futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(CROWD)))


def _seed(url: str, verify: str | bool) -> None:
    """100 secrets of 2 keys on both devices, and the PUT phase's paths on the pair (so PUTs overwrite)."""
    headers = {"Authorization": "Bearer admin", "Content-Type": "application/json"}
    with requests.Session() as session:
        session.verify = verify
        for device in ("bench", "pair"):
            for i in range(100):
                body = f'{{"data": {{"password": "{VALUE}", "user": "{VALUE}"}}}}'
                session.post(
                    f"{url}/api/v1/hsm/secrets/bench/s{i:03d}?device={device}",
                    data=body,
                    headers=headers,
                    timeout=30,
                    verify=verify,
                ).raise_for_status()
        for path in _write_paths():
            body = f'{{"data": {{"password": "{VALUE}", "n": "00000000"}}}}'
            session.put(
                f"{url}/api/v1/hsm/secrets/{path}?device=pair",
                data=body,
                headers=headers,
                timeout=30,
                verify=verify,
            ).raise_for_status()


def _serving_files(harness: types.ModuleType, directory: pathlib.Path) -> object:
    """A leaf for localhost from a throwaway CA, as the operator issues the API's (harness.TLS files)."""
    directory.mkdir(parents=True)
    ca = pki.new_ca()
    leaf = pki.issue_serving(ca, ["localhost"])
    for name, content in (("tls.crt", leaf.cert), ("tls.key", leaf.key), ("ca.crt", ca.cert)):
        (directory / name).write_bytes(content)
    return harness.TLS(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")


def _line(
    name: str, r: Result, floor: float, floor_name: str, api_ms: float, agents_ms: float, cores: int
) -> str:
    total = api_ms + agents_ms
    return (
        f"{name:28s} {r.rate:7.1f}/s ({r.rate / floor:4.2f} of {floor_name})  "
        f"p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  n {r.requests:6d}  errors {r.errors:3d}  "
        f"CPU {total:5.2f} ms/req (api {api_ms:5.2f} + agents {agents_ms:5.2f}; "
        f"= {cores * 1000 / total:5.0f}/s on {cores} cores)  load {os.getloadavg()[0]:4.1f}"
    )


def _comparison(results: dict[str, dict[str, tuple[Result, float]]]) -> str:
    """The phases side by side: req/s, p99 and the API's CPU per request over each transport, and HTTPS's
    share of HTTP's rate. wrk runs on the same cores and does its own TLS: the rate ratio includes the
    client's cost, the CPU figures are the server's alone."""
    heading = ("HTTP req/s", "p99 ms", "API CPU ms", "HTTPS req/s", "p99 ms", "API CPU ms", "HTTPS/HTTP")
    lines = [f"{'phase':22s} " + " ".join(f"{column:>11s}" for column in heading)]
    for name, by_transport in results.items():
        (plain, plain_cpu), (tls, tls_cpu) = by_transport["HTTP"], by_transport["HTTPS"]
        lines.append(
            f"{name:22s} {plain.rate:11.1f} {plain.p99_ms:11.1f} {plain_cpu:11.2f} "
            f"{tls.rate:11.1f} {tls.p99_ms:11.1f} {tls_cpu:11.2f} {tls.rate / plain.rate:11.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument(
        "--read-copies-mib",
        type=int,
        default=None,
        help="the API's --read-copies-mib (default: as deployed; 0: every read asks its agent)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: run scripts/apt.sh (make setup)", file=sys.stderr)
        return 2
    harness = _harness()
    # Tokens on tmpfs where there is one: on a shared disk SoftHSM2's object files make writes measure the
    # disk (and whatever else uses it), not the agents or the API.
    shm = pathlib.Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private directory in it)
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-api-", dir=shm if shm.is_dir() else None))
    single = harness.make_agent(root, "bench-hsm")
    pair = [harness.make_agent(root, "pair-a"), harness.make_agent(root, "pair-b")]
    agents = [single, *pair]
    for agent in agents:
        agent.start()
    tls = _serving_files(harness, root / "tls")
    servers = {}
    try:
        for label, https in TRANSPORTS.items():
            servers[label] = harness.start_api(
                root / f"api-{label}",
                {"bench": [single], "pair": pair},
                workers=args.workers,
                threads=args.threads,
                tls=tls if https else None,
                **({} if args.read_copies_mib is None else {"copies_mib": args.read_copies_mib}),
            )
        _seed(servers["HTTPS"].url, servers["HTTPS"].verify)
        copies = "as deployed" if args.read_copies_mib is None else f"{args.read_copies_mib} MiB"
        _seed_crowd(single.address)
        print(
            f"plain HTTP and HTTPS (ECDSA P-256 leaf, TLS 1.3), each phase HTTP, HTTPS, HTTPS, HTTP; "
            f"gunicorn workers={args.workers} threads={args.threads} per server, read copies {copies}; "
            f"HSMDevice bench: 1 SoftHSM2 "
            f"agent, pair: 2; wrk with {args.connections} connections, {args.seconds:.0f} s per phase and "
            f"transport, 100 secrets of 2 keys (and {CROWD:,} of 1 in crowd); "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        agent_pids = [agent.process.pid for agent in agents]
        cores = len(os.sched_getaffinity(0))

        def measured(
            api_pids: list[int], run: Callable[..., Result], *run_args: Any
        ) -> tuple[Result, float, float]:
            _settle(agent_pids)
            api_before, agents_before = _cpu_seconds(api_pids), _cpu_seconds(agent_pids)
            r = run(*run_args)
            api_ms = (_cpu_seconds(api_pids) - api_before) * 1000 / max(r.requests, 1)
            return r, api_ms, (_cpu_seconds(agent_pids) - agents_before) * 1000 / max(r.requests, 1)

        results: dict[str, dict[str, tuple[Result, float]]] = {}
        health: dict[str, float] = {}

        def compare(name: str, phase: str, device: str, floors: dict[str, float], floor_name: str) -> None:
            """One phase over both transports: HTTP, HTTPS, HTTPS, HTTP, half the time each, so a machine
            that speeds up or slows down during the phase weighs on both alike. floors: by transport (the
            first phase, /health, sets its own)."""
            halves: dict[str, list[tuple[Result, float, float]]] = {}
            for label in (*TRANSPORT_ORDER, *reversed(TRANSPORT_ORDER)):
                api = servers[label]
                # wrk does not verify (the seeding does) and dials the address gunicorn listens on, not
                # localhost's ::1.
                url = api.url.replace("localhost", "127.0.0.1")
                api_pids = [api.process.pid, *_children(api.process.pid)]
                halves.setdefault(label, []).append(
                    measured(api_pids, _wrk, url, phase, device, args.seconds / 2, args.connections)
                )
            for label in TRANSPORT_ORDER:
                (first, api_1, agents_1), (second, api_2, agents_2) = halves[label]
                r = first.and_(second)
                api_ms = (api_1 * first.requests + api_2 * second.requests) / max(r.requests, 1)
                agents_ms = (agents_1 * first.requests + agents_2 * second.requests) / max(r.requests, 1)
                results.setdefault(name, {})[label] = (r, api_ms)
                floor = floors.setdefault(label, r.rate)
                print(_line(f"{name} {label}", r, floor, floor_name, api_ms, agents_ms, cores))

        for name, phase, device in READS:
            compare(name, phase, device, health, "health")
        r, api_ms, agents_ms = measured(
            [], _overwrites, pair[0].address, _write_paths(), args.seconds, args.connections
        )
        overwrite = r.rate
        print(_line("agent overwrite (gRPC)", r, overwrite, "itself", api_ms, agents_ms, cores))
        compare(*PUT, dict.fromkeys(TRANSPORT_ORDER, overwrite), "overwrite")
        print()
        print(_comparison(results))
    finally:
        for api in servers.values():
            harness.stop_api(api)
        for agent in agents:
            agent.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
