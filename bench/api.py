"""REST API benchmark: gunicorn (4 workers) on 127.0.0.1, one SoftHSM2-backed agent.

Prints reads/s with p50/p99 for GET secret and for list, and writes/s (PUT), with error counts.
Target (issue #7): >= 500 reads/s and p99 <= 50 ms. Authentication uses the static table of the
integration tests at the Deps seam (review results are cached for 30 s in production, so a steady
load pays the same as here); the load generator shares the machine's cores with the server.

Run: uv run python bench/api.py [--seconds 8] [--clients 8] [--workers 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
HARNESS = ROOT / "services" / "manager" / "tests" / "api" / "conftest.py"


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("api_bench_harness", HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _load(seconds: float, clients: int, request: Callable[[requests.Session, int], int]) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        session = requests.Session()
        count = 0
        while time.monotonic() < stop:
            start = time.perf_counter()
            status = request(session, index * 1_000_000 + count)
            latencies[index].append(time.perf_counter() - start)
            if not 200 <= status < 300:
                errors[index] += 1
            count += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = sorted(value for chunk in latencies for value in chunk)
    quantiles = statistics.quantiles(merged, n=100)
    return {
        "requests": len(merged),
        "per_second": len(merged) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "errors": sum(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    args = parser.parse_args()
    harness = _harness()
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-api-"))
    agent = harness.make_agent(root, "bench-hsm")
    agent.start()
    api = harness.start_api(root / "api", {"bench": [agent]}, workers=args.workers, threads=args.threads)
    headers = {"Authorization": "Bearer admin", "Content-Type": "application/json"}
    url = f"{api.url}/api/v1/hsm/secrets"
    value = base64.b64encode(b"x" * 64).decode()
    try:
        for i in range(100):
            body = f'{{"data": {{"password": "{value}", "user": "{value}"}}}}'
            requests.post(f"{url}/bench/s{i:03d}", data=body, headers=headers, timeout=30).raise_for_status()

        def get_secret(session: requests.Session, n: int) -> int:
            return session.get(f"{url}/bench/s{n % 100:03d}", headers=headers, timeout=30).status_code

        def list_secrets(session: requests.Session, n: int) -> int:
            return session.get(f"{url}?namespace=bench&limit=100", headers=headers, timeout=30).status_code

        def put_secret(session: requests.Session, n: int) -> int:
            body = (
                f'{{"data": {{"password": "{value}", "n": "{base64.b64encode(str(n).encode()).decode()}"}}}}'
            )
            # Each client writes its own paths: concurrent writes to one path conflict (412) by design.
            client, count = divmod(n, 1_000_000)
            route = f"{url}/bench/w{client}-{count % 20:02d}"
            return session.put(route, data=body, headers=headers, timeout=30).status_code

        print(
            f"gunicorn workers={args.workers} threads={args.threads}, 1 SoftHSM2 agent, "
            f"{args.clients} client threads, {args.seconds:.0f} s per phase, 100 secrets of 2 keys"
        )
        for name, request in (
            ("GET secret", get_secret),
            ("GET list (100)", list_secrets),
            ("PUT secret", put_secret),
        ):
            result = _load(args.seconds, args.clients, request)
            print(
                f"{name:15s} {result['per_second']:8.1f} req/s  p50 {result['p50_ms']:6.1f} ms  "
                f"p99 {result['p99_ms']:6.1f} ms  n {result['requests']:.0f}  errors {result['errors']:.0f}"
            )
    finally:
        harness.stop_api(api)
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
