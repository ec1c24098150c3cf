"""A CA rotation against two real agents on 127.0.0.1 while clients call them: no call fails, no restart.

The agents read their TLS files from kubelet-like mounts (a ``..data`` symlink swapped per update) that a
test kubelet keeps in line with the Secrets of the in-memory API server. The clients are the manager's own:
an AgentRegistry reading the clients' Secret through SecretTLS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from devcluster import ports
from hsm_manager import kube
from hsm_manager.decide import agentspec, carotation, model, owners
from hsm_manager.gateway import castore, client, endpoints, errors, pki, probe
from hsm_manager.operator import devices, metrics, rotation

from .. import fakes
from ..polling import wait_until

NS = "hsm-system"
DEVICE = "hsm"
AGENTS = ("hsm-agent-rot-a", "hsm-agent-rot-b")
PIN = "1234"
FILES = ("tls.crt", "tls.key", "ca.crt")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a local http URL
            return bool(answer.status == 200)
    except OSError:
        return False


class Mount:
    """A Secret volume as the kubelet writes it: a new directory per update behind ``..data``."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0
        self.shown: dict[str, bytes] = {}

    def publish(self, data: dict[str, bytes]) -> None:
        if data == self.shown:
            return
        self.generation += 1
        directory = self.root / f"..gen_{self.generation:04d}"
        directory.mkdir()
        for name in FILES:
            (directory / name).write_bytes(data[name])
        staged = self.root / "..data_tmp"
        staged.symlink_to(directory.name)
        os.rename(staged, self.root / "..data")
        for name in FILES:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")
        self.shown = data


@dataclasses.dataclass
class Fleet:
    cluster: fakes.FakeKube
    mounts: dict[str, Mount]
    processes: dict[str, subprocess.Popen[bytes]]
    endpoints: list[endpoints.AgentEndpoint]

    lag: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds the kubelet of an agent takes to show a changed Secret (as a real kubelet's sync period)."""
    _seen: dict[str, tuple[dict[str, bytes], float]] = dataclasses.field(default_factory=dict)

    def kubelet_sync(self, lagging: bool = True) -> bool:
        """Every mount shows its Secret once it has been stored so for the agent's lag; True when all do."""
        for agent, mount in self.mounts.items():
            stored = self.cluster.stored("Secret", NS, agentspec.tls_secret_name(agent))
            assert stored is not None
            data = pki.secret_data(stored)
            if self._seen.get(agent, ({}, 0.0))[0] != data:
                self._seen[agent] = (data, time.monotonic())
            if not lagging or time.monotonic() - self._seen[agent][1] >= self.lag.get(agent, 0.0):
                mount.publish(data)
        return all(mount.shown == self._seen[agent][0] for agent, mount in self.mounts.items())


def _agent_secret(agent: str, data: dict[str, bytes]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": agentspec.tls_secret_name(agent),
            "namespace": NS,
            "labels": owners.labels(agentspec.COMPONENT, DEVICE, agent),
        },
        "data": castore.encode(data),
    }


class ListingKube(fakes.FakeKube):
    """Lists as the API server does: items without kind and apiVersion (the list has them, not its items)."""

    def list_objects(self, kind: str, namespace: str | None, label_selector: str) -> list[kube.Obj]:
        items = super().list_objects(kind, namespace, label_selector)
        return [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]


def aged_ca_secret() -> kube.Obj:
    """The CA Secret of an installation whose CA has less than a fifth of its life left."""
    aged = pki.new_ca(now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3000))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": pki.CA_SECRET, "namespace": NS},
        "data": castore.encode({"tls.crt": aged.cert, "tls.key": aged.key}),
    }


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """Two agents whose CA has a fifth of its life left, their Secrets, and the clients' Secret."""
    cluster = ListingKube()
    cluster.add(aged_ca_secret())
    authority = castore.load(cluster, NS)
    castore.ensure_client(cluster, NS, authority, datetime.datetime.now(datetime.UTC))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(dir=shm) as raw:
        root = pathlib.Path(raw)
        fleet = Fleet(cluster, {}, processes, [])
        try:
            for index, agent in enumerate(AGENTS):
                data = castore.leaf_data(authority, agent, {}, client=False)
                assert data is not None
                cluster.add(_agent_secret(agent, data))
                fleet.mounts[agent] = Mount(root / f"tls-{index}")
                fleet.kubelet_sync()
                tokens = root / f"tokens-{index}"
                tokens.mkdir()
                conf = root / f"softhsm2-{index}.conf"
                conf.write_text(
                    f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                )
                env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
                init = ["softhsm2-util", "--init-token", "--free", "--label", "rot"]
                init += ["--pin", PIN, "--so-pin", "5678"]
                subprocess.run(init, env=env, check=True, capture_output=True, timeout=30)
                (root / "pin").write_text(PIN)
                grpc_port, health_port = ports.free_port(), ports.free_port()
                mount = fleet.mounts[agent].root
                command = [
                    sys.executable, "-m", "hsm_agent",
                    "--token-label=rot", f"--pin-file={root / 'pin'}",
                    f"--listen=127.0.0.1:{grpc_port}", f"--health-listen=127.0.0.1:{health_port}",
                    "--metrics-listen=",
                    f"--tls-cert={mount / 'tls.crt'}", f"--tls-key={mount / 'tls.key'}",
                    f"--tls-client-ca={mount / 'ca.crt'}", f"--device-name={agent}", "--pcscd=never",
                ]  # fmt: skip
                with (root / f"agent-{index}.log").open("w") as log:
                    processes[agent] = subprocess.Popen(command, env=env, stderr=log)
                wait_until(lambda p=health_port: _ready(f"http://127.0.0.1:{p}/readyz"), 30, "an agent ready")
                fleet.endpoints.append(
                    endpoints.AgentEndpoint(DEVICE, NS, agent, "", "n1", f"127.0.0.1:{grpc_port}")
                )
            yield fleet
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(10)


class Traffic:
    """Clients calling every agent until stopped, failures kept: three threads share the registry's channel,
    one connects afresh for every call (a client that reconnects, or a new API worker)."""

    def __init__(
        self,
        registry: endpoints.AgentRegistry,
        tls: endpoints.SecretTLS,
        agents: list[endpoints.AgentEndpoint],
    ) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._shared, args=(registry, agent), daemon=True)
            for agent in agents
            for _ in range(3)
        ] + [threading.Thread(target=self._fresh, args=(tls, agent), daemon=True) for agent in agents]

    def _shared(self, registry: endpoints.AgentRegistry, agent: endpoints.AgentEndpoint) -> None:
        while not self._stop.is_set():
            try:
                registry.client(agent).entries("", False)
                self.calls += 1
            except Exception as error:
                self.failures.append(f"{agent.name}: {error!r}")
            time.sleep(0.005)

    def _fresh(self, tls: endpoints.SecretTLS, agent: endpoints.AgentEndpoint) -> None:
        while not self._stop.is_set():
            held = tls.current()
            if probe.served(agent, held.ca_cert, pki.KeyPair(held.client_cert, held.client_key), 5):
                self.calls += 1
            else:
                self.failures.append(f"{agent.name}: a fresh connection was refused")
            time.sleep(0.02)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def test_a_ca_rotation_completes_with_no_failed_call_and_no_agent_restarted(fleet: Fleet) -> None:
    known = devices.Devices(NS)
    known.add(NS, DEVICE)
    holder = castore.Holder(castore.load(fleet.cluster, NS))
    old = holder.current().signing
    # Clients re-read their Secret every 3 s: a step that did not wait for them would break their calls.
    settings = rotation.Settings(client_reload=datetime.timedelta(seconds=3.5), interval=0, probe_timeout=2)
    owner = rotation.Rotation(
        fleet.cluster, NS, holder, endpoints.StaticDirectory(fleet.endpoints), known, settings
    )
    tls = endpoints.SecretTLS(fleet.cluster, NS, ttl=3)
    registry = endpoints.AgentRegistry(fakes.FakeKube(), tls, timeout=5)
    steps: list[carotation.Step] = []
    pids = {agent: process.pid for agent, process in fleet.processes.items()}

    fleet.lag[AGENTS[1]] = 2.5  # longer than the clients take to re-read their Secret

    def advance() -> bool:
        fleet.kubelet_sync()
        taken = owner.round_once()
        if taken is not carotation.Step.WAIT:
            steps.append(taken)
        return taken is carotation.Step.DROP

    try:
        with Traffic(registry, tls, fleet.endpoints) as traffic:
            wait_until(advance, 60, "the rotation to drop the old CA")
            wait_until(fleet.kubelet_sync, 10, "every agent to show the new CA alone")
            time.sleep(1)  # calls go on with the new CA alone for a while
    finally:
        registry.close()
    assert steps == [carotation.Step.BEGIN, carotation.Step.PROMOTE, carotation.Step.DROP]
    assert traffic.failures == []
    assert traffic.calls > 100
    new = holder.current()
    assert new.phase is carotation.Phase.STABLE
    assert new.signing != old
    fresh = pki.issue(new.signing, pki.CLIENT_NAME, client=True)
    stale = pki.issue(old, pki.CLIENT_NAME, client=True)
    for agent in fleet.endpoints:
        assert probe.served(agent, new.signing.cert, fresh, 5)  # trusting only the new CA
        assert not probe.served(agent, new.signing.cert, stale, 5)  # a client of the old CA is refused
    assert {agent: process.pid for agent, process in fleet.processes.items()} == pids
    assert all(process.poll() is None for process in fleet.processes.values())


def test_the_rotation_waits_in_trusting_while_an_agent_has_not_loaded_the_next_ca(fleet: Fleet) -> None:
    known = devices.Devices(NS)
    known.add(NS, DEVICE)
    holder = castore.Holder(castore.load(fleet.cluster, NS))
    settings = rotation.Settings(client_reload=datetime.timedelta(seconds=0), interval=0, probe_timeout=2)
    owner = rotation.Rotation(
        fleet.cluster, NS, holder, endpoints.StaticDirectory(fleet.endpoints), known, settings
    )
    assert owner.round_once() is carotation.Step.BEGIN
    # No kubelet sync: the agents still trust the old CA only.
    assert [owner.round_once() for _ in range(3)] == [carotation.Step.WAIT] * 3
    assert holder.current().phase is carotation.Phase.TRUSTING
    fleet.kubelet_sync()
    assert owner.round_once() is carotation.Step.PROMOTE


def test_the_metrics_show_the_expiry_of_each_ca_and_leaf(fleet: Fleet) -> None:
    known = devices.Devices(NS)
    known.add(NS, DEVICE)
    holder = castore.Holder(castore.load(fleet.cluster, NS))
    owner = rotation.Rotation(
        fleet.cluster,
        NS,
        holder,
        endpoints.StaticDirectory(fleet.endpoints),
        known,
        rotation.Settings(interval=0),
    )
    owner.round_once()
    shown = {
        (s.labels["role"], s.labels["name"])
        for family in metrics.CERTIFICATE_EXPIRY.collect()
        for s in family.samples
    }
    assert shown == {
        ("signing", pki.CA_SECRET),
        ("next", pki.CA_SECRET),
        ("client", pki.CLIENT_SECRET),
        *(("agent", agentspec.tls_secret_name(agent)) for agent in AGENTS),
    }


def _drain(stream: client.Watch, events: queue.Queue[model.Event]) -> None:
    with contextlib.suppress(errors.AgentCallError):  # the stream ends when the test cancels it
        for event in stream:
            events.put(event)


def test_a_stream_open_when_the_clients_certificate_changes_goes_on(fleet: Fleet) -> None:
    registry = endpoints.AgentRegistry(
        fakes.FakeKube(), endpoints.SecretTLS(fleet.cluster, NS, ttl=0), timeout=5
    )
    agent = fleet.endpoints[0]
    try:
        stream = registry.client(agent).watch()
        events: queue.Queue[model.Event] = queue.Queue()
        threading.Thread(target=_drain, args=(stream, events), daemon=True).start()
        assert events.get(timeout=10).kind is model.EventKind.SNAPSHOT_END
        castore.ensure_client(
            fleet.cluster, NS, castore.load(fleet.cluster, NS).begun(), datetime.datetime.now(datetime.UTC)
        )
        # The next call opens a channel with the new certificate; the stream's channel stays open.
        registry.client(agent).write("after/renewal", {"k": b"v"}, None)
        assert events.get(timeout=10).path == "after/renewal"
        stream.cancel()
    finally:
        registry.close()


def test_each_step_waits_until_the_clients_had_time_to_re_read_their_secret(fleet: Fleet) -> None:
    known = devices.Devices(NS)
    known.add(NS, DEVICE)
    holder = castore.Holder(castore.load(fleet.cluster, NS))
    now = [datetime.datetime.now(datetime.UTC)]
    reload = datetime.timedelta(minutes=2)
    owner = rotation.Rotation(
        fleet.cluster,
        NS,
        holder,
        endpoints.StaticDirectory(fleet.endpoints),
        known,
        rotation.Settings(client_reload=reload, interval=0, probe_timeout=2),
        clock=lambda: now[0],
    )

    def round_after(elapsed: datetime.timedelta) -> carotation.Step:
        now[0] += elapsed
        fleet.kubelet_sync(lagging=False)
        return owner.round_once()

    assert owner.round_once() is carotation.Step.BEGIN
    second = datetime.timedelta(seconds=1)
    assert round_after(reload - second) is carotation.Step.WAIT  # every agent trusts the next CA already
    assert round_after(second) is carotation.Step.PROMOTE
    assert round_after(reload - second) is carotation.Step.WAIT  # every agent serves the new CA already
    assert round_after(second) is carotation.Step.DROP


def test_the_followers_see_each_step_in_the_same_round() -> None:
    cluster = fakes.FakeKube()
    cluster.add(aged_ca_secret())
    holder = castore.Holder(castore.load(cluster, NS))
    seen: list[carotation.Phase] = []
    owner = rotation.Rotation(
        cluster,
        NS,
        holder,
        endpoints.StaticDirectory([]),
        devices.Devices(NS),
        rotation.Settings(interval=0),
        followers=[lambda: seen.append(holder.current().phase)],
    )
    assert owner.round_once() is carotation.Step.BEGIN
    assert seen == [carotation.Phase.TRUSTING]
