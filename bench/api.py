"""REST API benchmark: gunicorn (4 workers) on 127.0.0.1, one SoftHSM2-backed agent, load from wrk.

Prints reads/s with p50/p99 for GET secret and for list, and writes/s (PUT), with error counts (any
socket error or status >= 400), each also as a ratio to GET /health in the same run; and the CPU the
server side (gunicorn master and workers, agent) spent per request, with the rate that CPU cost allows
on this machine's cores: that figure holds steady where the throughput swings with whatever else the
machine runs. Target (issue #7): >= 500 reads/s and p99 <= 50 ms. Authentication uses the static table
of the integration tests at the Deps seam (review results are cached for 30 s in production, so a steady
load pays the same as here). The load comes from wrk (Debian package, installed by scripts/apt.sh), a
native generator: a Python client on the same two cores took a third of them.

Run: uv run python bench/api.py [--seconds 8] [--connections 8] [--workers 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
HARNESS = ROOT / "services" / "manager" / "tests" / "api" / "conftest.py"
SCRIPT = pathlib.Path(__file__).with_name("api.lua")
# The floor first: /health passes through gunicorn and Flask but no authorization and no agent, so it is
# the most this server can answer on this machine right now; each phase's ratio to it is comparable across
# runs where the absolute rates are not.
PHASES = (("GET health", "health"), ("GET secret", "get"), ("GET list (100)", "list"), ("PUT secret", "put"))


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("api_bench_harness", HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


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


def _wrk(url: str, phase: str, seconds: float, connections: int) -> dict[str, float]:
    command = [
        "wrk", "--threads", "2", "--connections", str(connections), "--duration", f"{seconds:.0f}s",
        "--timeout", "30s", "--script", str(SCRIPT), url, "--", phase,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: run scripts/apt.sh (make setup)", file=sys.stderr)
        return 2
    harness = _harness()
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-api-"))
    agent = harness.make_agent(root, "bench-hsm")
    agent.start()
    api = harness.start_api(root / "api", {"bench": [agent]}, workers=args.workers, threads=args.threads)
    headers = {"Authorization": "Bearer admin", "Content-Type": "application/json"}
    value = base64.b64encode(b"x" * 64).decode()
    try:
        for i in range(100):
            body = f'{{"data": {{"password": "{value}", "user": "{value}"}}}}'
            requests.post(
                f"{api.url}/api/v1/hsm/secrets/bench/s{i:03d}", data=body, headers=headers, timeout=30
            ).raise_for_status()
        print(
            f"gunicorn workers={args.workers} threads={args.threads}, 1 SoftHSM2 agent, "
            f"wrk with {args.connections} connections, {args.seconds:.0f} s per phase, 100 secrets of 2 keys"
        )
        server = [api.process.pid, *_children(api.process.pid), agent.process.pid]
        cores = len(os.sched_getaffinity(0))
        floor = 0.0
        for name, phase in PHASES:
            cpu_before = _cpu_seconds(server)
            r = _wrk(api.url, phase, args.seconds, args.connections)
            cpu_ms = (_cpu_seconds(server) - cpu_before) * 1000 / r["requests"]
            rate = r["requests"] / r["duration_us"] * 1e6
            floor = floor or rate
            print(
                f"{name:15s} {rate:8.1f} req/s ({rate / floor:4.2f} of health)  "
                f"p50 {r['p50_us'] / 1000:6.1f} ms  p99 {r['p99_us'] / 1000:6.1f} ms  "
                f"n {r['requests']:.0f}  errors {r['errors']:.0f}  "
                f"server CPU {cpu_ms:5.2f} ms/req (= {cores * 1000 / cpu_ms:6.0f} req/s on {cores} cores)"
            )
    finally:
        harness.stop_api(api)
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
