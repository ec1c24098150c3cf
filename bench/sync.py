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
Usage: python bench/sync.py [--updates 200] [--secrets 1000 [5000 ...]] [--idle 60] [--templated]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import operator_env as env  # noqa: E402

from devcluster import build, cluster, realnodes, softhsm, testkit  # noqa: E402
from hsm_common import constants  # noqa: E402
from hsmproto.v1 import hsm_pb2  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write(device: env.Device, path: str, data: dict[str, bytes]) -> int:
    request = hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data))
    return int(device.stub.WriteSecret(request, timeout=30).version)


#: --templated: each HSMSecret selects and renames both keys, adds a label, and renders a DATABASE_URL.
TEMPLATED: dict[str, object] = {
    "data": [{"secretKey": "DB_USER", "key": "user"}, {"secretKey": "DB_PASSWORD", "key": "password"}],
    "target": {
        "labels": {"app.kubernetes.io/part-of": "bench"},
        "template": {
            "mergePolicy": "Merge",
            "data": {
                "DATABASE_URL": "postgres://{{ values.DB_USER }}:{{ values.DB_PASSWORD | urlencode }}"
                "@db:5432/app"
            },
        },
    },
}
SHAPE: dict[str, object] = {}
"""The spec fields every HSMSecret of the run gets besides its device (TEMPLATED with --templated)."""


def hsmsecret(kube: testkit.Kube, namespace: str, name: str, device: str) -> str:
    """Create an HSMSecret; returns its uid."""
    created = kube.client.request(
        "POST",
        f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets",
        env.hsmsecret_manifest(namespace, name, device=device, **SHAPE),
    )
    return str(created["metadata"]["uid"])


def latency(kube: testkit.Kube, device: env.Device, namespace: str, updates: int) -> None:
    hsmsecret(kube, namespace, "latency", device.name)
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/latency"

    def version_is(wanted: str) -> bool:
        found = env.get(kube, secret_path) or {"metadata": {}}
        annotations = found["metadata"].get("annotations") or {}
        return bool(annotations.get(constants.ANNOTATION_HSM_VERSION) == wanted)

    first = write(device, f"{namespace}/latency", {"user": b"app", "password": b"0"})
    testkit.poll(functools.partial(version_is, str(first)), 30, "the first version", period=0.005)
    samples = []
    for i in range(1, updates + 1):
        started = time.monotonic()
        wanted = str(write(device, f"{namespace}/latency", {"user": b"app", "password": str(i).encode()}))
        testkit.poll(functools.partial(version_is, wanted), 30, f"update {i}", period=0.005)
        samples.append(time.monotonic() - started)
    ms = [s * 1000 for s in samples]
    print(
        f"write -> Secret updated over {updates} updates: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms"
    )


def cpu_by_process() -> dict[str, float]:
    """CPU seconds used so far by every process on the machine, summed by command name."""
    found: dict[str, float] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue  # gone meanwhile
        fields = rest.split()
        name = head.partition("(")[2]
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def cpu_since(before: dict[str, float]) -> str:
    """The processes that used the most CPU since before, with their seconds."""
    after = cpu_by_process()
    used = sorted(((after[n] - before.get(n, 0.0), n) for n in after), reverse=True)
    return ", ".join(f"{name} {seconds:.1f} s" for seconds, name in used[:7])


def in_sync(
    kube: testkit.Kube, namespace: str, count: int, timeout: float, on_first: Callable[[], None]
) -> None:
    """Return once every one of the count HSMSecrets of namespace has status InSync (a watch, not polls:
    listing thousands of HSMSecrets every second would load the API server the figure is about);
    on_first is called when the first one is."""
    collection = f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets"
    deadline = time.monotonic() + timeout
    listing = kube.client.get(collection)
    synced = {
        item["metadata"]["name"]
        for item in listing["items"]
        if (item.get("status") or {}).get("syncStatus") == "InSync"
    }
    version = listing["metadata"]["resourceVersion"]
    while len(synced) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{len(synced)} of {count} HSMSecrets InSync after {timeout:.0f} s")
        window = int(min(remaining, 60)) + 1
        for event in kube.client.watch(f"{collection}?resourceVersion={version}", window):
            obj = event["object"]
            version = obj["metadata"].get("resourceVersion", version)
            if event["type"] == "BOOKMARK":
                continue
            if (obj.get("status") or {}).get("syncStatus") == "InSync" and event["type"] != "DELETED":
                if not synced:
                    on_first()
                synced.add(obj["metadata"]["name"])
            else:
                synced.discard(obj["metadata"]["name"])
            if len(synced) >= count:
                return


def seed(kube: testkit.Kube, device: env.Device, namespace: str, count: int) -> dict[str, str]:
    """count paths on the token and an HSMSecret for each in a new namespace; returns name → uid."""
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    started = time.monotonic()
    for i in range(count):
        write(device, f"{namespace}/s{i}", {"user": b"app", "password": f"pw-{i}".encode()})
    wrote = time.monotonic() - started
    started = time.monotonic()
    uids = {f"s{i}": hsmsecret(kube, namespace, f"s{i}", device.name) for i in range(count)}
    print(
        f"setup {count}: {count} writes on the agent in {wrote:.1f} s, "
        f"{count} HSMSecrets in {time.monotonic() - started:.1f} s"
    )
    return uids


def cold(op: env.Operator, device: env.Device, count: int) -> tuple[str, float]:
    """Cold convergence of count HSMSecrets; returns their namespace and the seconds it took."""
    kube = op.kube
    namespace = f"bench-{count}-{uuid.uuid4().hex[:6]}"
    op.stop()
    seed(kube, device, namespace, count)
    peak = [0]
    done = threading.Event()

    def sample_rss() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], op.rss_bytes())

    load = os.getloadavg()[0]
    machine = cpu_by_process()
    op.start()
    started = time.monotonic()
    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    first: list[float] = []  # (seconds, CPU) when the first HSMSecret was InSync: the start-up's cost

    def at_first() -> None:
        first.extend((time.monotonic() - started, op.cpu_seconds()))

    in_sync(kube, namespace, count, 1800, at_first)
    elapsed = time.monotonic() - started
    cpu = op.cpu_seconds()
    passes = {
        result: operator_metric(op, "hsm_manager_sync_total", f'result="{result}"')
        for result in ("written", "unchanged", "error", "invalid")
    }
    done.set()
    sampler.join()
    rss = op.rss_bytes()
    print(
        f"cold convergence of {count} HSMSecrets (every one InSync): {elapsed:.1f} s from operator "
        f"process start ({count / elapsed:.0f}/s), operator CPU {cpu:.1f} s ({1000 * cpu / count:.1f} ms per "
        f"HSMSecret, start-up included; the first was InSync at {first[0]:.1f} s and {first[1]:.1f} s CPU, "
        f"{1000 * (cpu - first[1]) / (count - 1):.1f} ms CPU per HSMSecret after it); "
        f"RSS {rss / 2**20:.0f} MiB after, peak {peak[0] / 2**20:.0f} MiB; "
        f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; "
        f"sync passes meanwhile by result: { {k: int(v) for k, v in passes.items() if v} }; CPU by process: "
        f"{cpu_since(machine)}"
    )
    return namespace, elapsed


def floor(op: env.Operator, device: env.Device, synced: str, count: int, workers: int) -> float:
    """The floor: the same Secret creations and status patches as the operator's, for count new
    HSMSecrets, made by bench/floors/sync_writes.py as the operator's ServiceAccount from node-1 (operator
    stopped)."""
    kube = op.kube
    op.stop()
    namespace = f"floor-{count}-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    uids = {f"s{i}": hsmsecret(kube, namespace, f"s{i}", device.name) for i in range(count)}
    sample = kube.client.get(f"{env.GROUP_PATH}/namespaces/{synced}/hsmsecrets/s0")
    secret = kube.client.get(f"/api/v1/namespaces/{synced}/secrets/s0")
    meta = secret["metadata"]
    plan = {
        "namespace": namespace,
        "hsmsecrets": f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets",
        "owner_label": constants.LABEL_SECRET,
        "secret": {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": secret["type"],
            "metadata": {k: meta[k] for k in ("labels", "annotations", "ownerReferences")},
            "data": secret["data"],
        },
        "status": sample["status"],
        "jobs": [{"name": name, "uid": uid} for name, uid in uids.items()],
    }
    plan_file = op.log.with_name(f"{namespace}.json")
    plan_file.write_text(json.dumps(plan))
    command = [
        sys.executable,
        str(ROOT / "bench" / "floors" / "sync_writes.py"),
        str(op.kubeconfig),
        str(plan_file),
    ]
    load = os.getloadavg()[0]
    machine = cpu_by_process()
    result = subprocess.run(
        kube.in_node([*command, str(workers)], env.OPERATOR_NODE),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the floor client failed: {result.stderr[-2000:]}")
    elapsed = float(result.stdout.split()[-2])
    print(
        f"floor for {count}: {2 * count} writes (Secret create + status patch each) in {elapsed:.1f} s "
        f"({count / elapsed:.0f} HSMSecrets/s) with {workers} connections; load average {load:.1f} before; "
        f"CPU by process: {cpu_since(machine)}"
    )
    drop(kube, namespace)
    return elapsed


def drop(kube: testkit.Kube, namespace: str) -> None:
    """Delete a namespace and wait until it is gone (its objects' deletion would load later figures)."""
    kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")
    testkit.poll(
        lambda: env.get(kube, f"/api/v1/namespaces/{namespace}") is None, 900, f"{namespace} gone", 1.0
    )


def operator_metric(op: env.Operator, name: str, labels: str = "") -> float:
    """The sum of a metric's samples (those whose labels contain labels); NaN while the operator does not
    serve its metrics yet."""
    try:
        text = op.metrics_text()
    except OSError:
        return math.nan
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} ")) and labels in line
    )


def restart(op: env.Operator, device: env.Device, count: int) -> None:
    """A restart with count HSMSecrets in sync: how long until each had its pass, and what it read."""
    before = env.agent_counts(op.kube, op.namespace, device.name)
    op.start()
    started = time.monotonic()
    testkit.poll(lambda: operator_metric(op, "hsm_manager_sync_total") >= count, 900, "a pass each", 0.5)
    testkit.poll(lambda: operator_metric(op, "hsm_manager_sync_queue_backlog") == 0, 900, "no backlog", 0.5)
    elapsed = time.monotonic() - started
    after = env.agent_counts(op.kube, op.namespace, device.name)
    reads = sum(after.get(k, 0.0) - before.get(k, 0.0) for k in after if k != "probe")
    print(
        f"restart with {count} HSMSecrets in sync: every one checked {elapsed:.1f} s after the process "
        f"started; PKCS#11 calls meanwhile besides the probe: {reads:.0f}"
    )


def idle(op: env.Operator, device: env.Device, seconds: float) -> None:
    time.sleep(5)  # let the last passes drain
    before = env.agent_counts(op.kube, op.namespace, device.name)
    passes_before = operator_metric(op, "hsm_manager_sync_total")
    time.sleep(seconds)
    after = env.agent_counts(op.kube, op.namespace, device.name)
    passes_after = operator_metric(op, "hsm_manager_sync_total")
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
        extra = (f"--workers={args.workers}",) if args.workers else ()
        op = env.start_operator(kube, scratch, extra, store=store)
        device = env.deploy_device(op, "bench", conf=softhsm.write_conf(store))
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        latency(kube, device, namespace, args.updates)
        for index, count in enumerate(args.secrets):
            synced, elapsed = cold(op, device, count)
            floor_seconds = floor(op, device, synced, count, args.floor_workers)
            print(f"cold convergence of {count} / floor: {elapsed / floor_seconds:.2f} (target <= 1.5)")
            if index < len(args.secrets) - 1:
                drop(kube, synced)
        restart(op, device, args.secrets[-1])
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
    parser.add_argument("--workers", type=int, default=0, help="the operator's sync workers (0: its default)")
    parser.add_argument("--floor-workers", type=int, default=8, help="connections of the floor client")
    parser.add_argument(
        "--templated", action="store_true", help="HSMSecrets with key selection, a label and a template"
    )
    args = parser.parse_args()
    if args.templated:
        SHAPE.update(TEMPLATED)
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
