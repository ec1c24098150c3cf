"""Benchmark of HSMSecret sync on its own devcluster (real nodes): the operator as its ServiceAccount, in
node-1's network namespace as in its pod (tests/e2e/operator_env.py), and a real agent pod on node-1.

Prints figures; not a test. Figures:
- write → Secret updated latency (p50/p99/max) over --updates sequential updates of one HSMSecret;
- cold convergence: --secrets HSMSecrets (and their paths on the token) exist before the operator starts;
  time from starting the operator process until every Secret exists, and the operator's RSS;
- PKCS#11 calls the agent makes during --idle seconds with all of them in sync (target: 0 apart from
  the agent's own token-presence probe, which is shown separately).

The token store is on tmpfs: a directory of /dev/shm that agent pods mount at the same path (a hostPath: the
nodes share the host's /dev/shm), so one SOFTHSM2_CONF serves softhsm2-util here and the agent there.
Usage: python bench/sync.py [--updates 200] [--secrets 1000 [5000 ...]] [--idle 60]
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import operator_env as env  # noqa: E402

from devcluster import build, cluster, realnodes, softhsm, testkit  # noqa: E402
from hsm_common import constants  # noqa: E402
from hsmproto.v1 import hsm_pb2  # noqa: E402

MANAGED = f"{constants.LABEL_MANAGED_BY}={constants.MANAGED_BY_VALUE}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write(device: env.Device, path: str, data: dict[str, bytes]) -> int:
    request = hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data))
    return int(device.stub.WriteSecret(request, timeout=30).version)


def hsmsecret(kube: testkit.Kube, namespace: str, name: str, device: str) -> None:
    kube.client.request(
        "POST",
        f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets",
        env.hsmsecret_manifest(namespace, name, device=device),
    )


def latency(kube: testkit.Kube, device: env.Device, namespace: str, updates: int) -> None:
    hsmsecret(kube, namespace, "latency", device.name)
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/latency"

    def version_is(wanted: str) -> bool:
        found = env.get(kube, secret_path) or {"metadata": {}}
        annotations = found["metadata"].get("annotations") or {}
        return bool(annotations.get(constants.ANNOTATION_HSM_VERSION) == wanted)

    first = write(device, f"{namespace}/latency", {"k": b"0"})
    testkit.poll(functools.partial(version_is, str(first)), 30, "the first version", period=0.005)
    samples = []
    for i in range(1, updates + 1):
        started = time.monotonic()
        wanted = str(write(device, f"{namespace}/latency", {"k": str(i).encode()}))
        testkit.poll(functools.partial(version_is, wanted), 30, f"update {i}", period=0.005)
        samples.append(time.monotonic() - started)
    ms = [s * 1000 for s in samples]
    print(
        f"write -> Secret updated over {updates} updates: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms"
    )


def managed_count(kube: testkit.Kube, namespace: str) -> int:
    listing = kube.client.get(f"/api/v1/namespaces/{namespace}/secrets?labelSelector={MANAGED}")
    return len(listing["items"])


def cold(op: env.Operator, device: env.Device, count: int) -> None:
    kube = op.kube
    namespace = f"bench-{count}-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    op.stop()
    started = time.monotonic()
    for i in range(count):
        write(device, f"{namespace}/s{i}", {"user": b"app", "password": f"pw-{i}".encode()})
    wrote = time.monotonic() - started
    started = time.monotonic()
    for i in range(count):
        hsmsecret(kube, namespace, f"s{i}", device.name)
    created = time.monotonic() - started
    print(
        f"setup {count}: {count} writes on the agent in {wrote:.1f} s, {count} HSMSecrets in {created:.1f} s"
    )
    peak = [0]
    done = threading.Event()

    def sample_rss() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], op.rss_bytes())

    op.start()
    started = time.monotonic()
    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    testkit.poll(lambda: managed_count(kube, namespace) >= count, 1800, f"{count} Secrets", period=1.0)
    elapsed = time.monotonic() - started
    cpu = op.cpu_seconds()
    done.set()
    sampler.join()
    rss = op.rss_bytes()
    print(
        f"cold convergence of {count} HSMSecrets: {elapsed:.1f} s from operator process start "
        f"({count / elapsed:.0f}/s), operator CPU {cpu:.1f} s ({1000 * cpu / count:.0f} ms per HSMSecret); "
        f"operator RSS {rss / 2**20:.0f} MiB after, peak {peak[0] / 2**20:.0f} MiB; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def operator_passes(op: env.Operator) -> float:
    with urllib.request.urlopen(f"http://{op.metrics_address()}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("hsm_manager_sync_total{")
    )


def idle(op: env.Operator, device: env.Device, seconds: float) -> None:
    time.sleep(5)  # let the last passes of convergence drain
    before, passes_before = env.agent_counts(op.kube, op.namespace, device.name), operator_passes(op)
    time.sleep(seconds)
    after, passes_after = env.agent_counts(op.kube, op.namespace, device.name), operator_passes(op)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(after) | set(before))}
    delta = {k: v for k, v in delta.items() if v}
    sync_calls = sum(v for k, v in delta.items() if k != "probe")
    print(
        f"idle {seconds:.0f} s: {sync_calls:.0f} PKCS#11 calls besides the agent's token probe "
        f"(probe: {delta.get('probe', 0):.0f}; all by operation: {delta}); "
        f"operator sync passes meanwhile: {passes_after - passes_before:.0f}"
    )


def measure(kube: testkit.Kube, scratch: pathlib.Path, store: pathlib.Path, args: argparse.Namespace) -> None:
    """Every figure, on a fresh operator and one device whose token is in store (a /dev/shm directory)."""
    op: env.Operator | None = None
    device: env.Device | None = None
    try:
        op = env.start_operator(kube, scratch, store=store)
        device = env.deploy_device(op, "bench", conf=softhsm.write_conf(store))
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        latency(kube, device, namespace, args.updates)
        for count in args.secrets:
            cold(op, device, count)
        idle(op, device, args.idle)
    finally:
        if device is not None:
            device.heartbeat.stop()
        if op is not None:
            op.stop()
        env.stop_node_plugins()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--secrets", type=int, nargs="+", default=[1000])
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    build.build()
    archives, sandbox = realnodes.image_archives()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="bench-sync-"))
    shm = pathlib.Path("/dev/shm")  # noqa: S108 - tmpfs for the token store, a private subdirectory
    store = pathlib.Path(tempfile.mkdtemp(prefix="bench-sync-tokens-", dir=shm))
    try:
        store.chmod(0o755)  # the agents' user reads the configuration inside
        running = cluster.up(
            cluster.Settings(run_dir=scratch / "devcluster", images=archives, sandbox_image=sandbox)
        )
        try:
            measure(testkit.from_kubeconfig(running.kubeconfig, scratch, running), scratch, store, args)
        finally:
            cluster.down(running.run_dir)
    finally:
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
