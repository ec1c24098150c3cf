"""The API's serving certificate renewed while clients call the API: no request fails, no API pod restarts.

The module installs the system on its OWN devcluster (``devcluster.system.install``, as the scenario does:
the operator and the API as pods) and runs two API pods. Clients verify the API against the CA the operator
publishes in ``hsm-api-ca`` and call it through its Service from several threads: GET of a secret and
/health, on new connections and on kept-alive ones. A watcher per API pod opens a fresh TLS connection to it
every few tenths of a second and notes the serial of the certificate it serves. The renewal is the one a
user would make: deleting the Secret ``hsm-api-tls``; the operator issues a new leaf at once, the kubelets
bring it into the pods (made to sync the pods by the test, rather than at their periodic sync a minute or
more later), and each gunicorn worker loads it at its next new connection.

The timeline (renewal written → first handshake with the new leaf, per pod) is printed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import pathlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509

from devcluster import build, cluster, kubeapi, system, testkit

API_PODS = 2
KUBELET_SYNC = 180.0
"""Seconds the kubelets may take to bring the renewed Secret into both pods (periodic pod sync, 60 to 90 s,
twice over for a loaded machine)."""
PATH = "team-a/rotation"
SECRET = f"/api/v1/namespaces/{system.NAMESPACE}/secrets/hsm-api-tls"
AFTER = 20
"""Requests of each kind the clients answer once every pod serves the new leaf, before the test stops them."""


def serial(cert_der: bytes) -> int:
    return x509.load_der_x509_certificate(cert_der).serial_number


def secret_serial(client: kubeapi.Client) -> int | None:
    try:
        found = client.get(SECRET)
    except kubeapi.ApiError as err:
        if err.status == 404:
            return None
        raise
    pem = base64.b64decode(found["data"]["tls.crt"])
    return x509.load_pem_x509_certificate(pem).serial_number


def api_pods(client: kubeapi.Client) -> dict[str, tuple[str, int, str]]:
    """Each API pod by name: (uid, container restarts, pod IP)."""
    found = {}
    for pod in system.pods(client, "api"):
        status = pod.get("status") or {}
        restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
        found[pod["metadata"]["name"]] = (pod["metadata"]["uid"], restarts, status.get("podIP", ""))
    return found


def ready_api_pods(client: kubeapi.Client) -> dict[str, tuple[str, int, str]]:
    ready = {
        pod["metadata"]["name"]
        for pod in system.pods(client, "api")
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
    }
    return {name: found for name, found in api_pods(client).items() if name in ready}


class Verifying:
    """TLS to the API as its clients make it: the published CA, the Service's name."""

    def __init__(self, ca_file: pathlib.Path) -> None:
        self.context = ssl.create_default_context(cafile=str(ca_file))

    def connect(self, address: str) -> ssl.SSLSocket:
        host, port = address.rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=10)
        return self.context.wrap_socket(raw, server_hostname=system.API_SERVER_NAME)


class Connection(http.client.HTTPSConnection):
    """One HTTPS connection to address, verified as Verifying does."""

    def __init__(self, address: str, tls: Verifying) -> None:
        super().__init__(address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1]), timeout=10)
        self._address, self._tls = address, tls

    def connect(self) -> None:
        self.sock = self._tls.connect(self._address)

    def served(self) -> int:
        assert isinstance(self.sock, ssl.SSLSocket)
        return serial(self.sock.getpeercert(binary_form=True) or b"")


@dataclasses.dataclass
class Tally:
    """What the clients saw; one lock, the clients' threads all count into it."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    ok: dict[str, int] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)

    def count(self, kind: str) -> None:
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def request(connection: Connection, route: str, token: str) -> None:
    """GET route on connection; raises unless it answers 200 (its body read: the connection stays usable)."""
    connection.request("GET", f"/api/v1{route}", headers={"Authorization": f"Bearer {token}"})
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{route}: HTTP {answer.status}: {body[:200]!r}")


class Clients:
    """Threads calling the API through its Service until stopped: half open a new connection per request,
    half keep one connection open for the whole run (opened before the renewal, used after it)."""

    def __init__(self, address: str, tls: Verifying, token: str, threads: int = 4) -> None:
        self.tally = Tally()
        self.kept_serials: dict[int, int] = {}
        """Thread index → the serial its kept-alive connection was served (one connection for the run)."""
        self._address, self._tls, self._token = address, tls, token
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"api-client-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        kept = index % 2 == 1
        connection = Connection(self._address, self._tls) if kept else None
        opened: socket.socket | None = None
        n = 0
        while not self._stop.is_set():
            n += 1
            route = "/health" if n % 2 else f"/hsm/secrets/{PATH}"
            kind = f"{'kept-alive' if kept else 'new connection'} GET {'/health' if n % 2 else 'secret'}"
            current = connection or Connection(self._address, self._tls)
            try:
                request(current, route, self._token)
                if kept:
                    # http.client would silently dial again after a close: the same socket proves it did not.
                    opened = opened or current.sock
                    if current.sock is not opened:
                        raise RuntimeError("the kept-alive connection was closed and opened again")
                    self.kept_serials.setdefault(index, current.served())
                self.tally.count(kind)
            except Exception as error:  # every failure counts: the test asserts there is none
                self.tally.fail(f"{kind}: {type(error).__name__}: {error}")
            finally:
                if not kept:
                    current.close()
            self._stop.wait(0.02)  # paced: the machine is shared, and a few hundred requests suffice
        if connection is not None:
            connection.close()


class Watcher:
    """A fresh TLS connection to one API pod every 0.2 s: (time, serial served) of each, or the error."""

    def __init__(self, address: str, tls: Verifying) -> None:
        self.seen: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self._address, self._tls = address, tls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def first(self, wanted: int) -> float | None:
        return next((at for at, found in self.seen if found == wanted), None)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._tls.connect(self._address) as tls:
                    self.seen.append((time.monotonic(), serial(tls.getpeercert(binary_form=True) or b"")))
            except OSError as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            self._stop.wait(0.2)


@dataclasses.dataclass
class Installed:
    system: system.System
    ca_file: pathlib.Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    build.build()
    options = system.Options(
        run_dir=tmp_path_factory.mktemp("api-tls-rotation") / "devcluster", repo_root=system.repo_root()
    )
    found = system.install(options)
    try:
        client = found.client
        client.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{system.NAMESPACE}/deployments/hsm-api/scale",
            {"spec": {"replicas": API_PODS}},
            content_type="application/merge-patch+json",
        )
        testkit.poll(lambda: len(ready_api_pods(client)) == API_PODS, 120, f"{API_PODS} API pods Ready", 1.0)
        found.api.put_secret(PATH, {"password": b"before, during and after"})
        yield Installed(found, system.write_api_ca(client, found.cluster.run_dir))
    finally:
        cluster.down(found.cluster.run_dir)


def report(config: pytest.Config, lines: list[str]) -> None:
    """Print past pytest's capture: the timeline is the test's report, wanted on every run."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n".join(["", "API certificate renewal timeline:", *lines]), flush=True)


def running(things: list[Any], stop: Callable[[Any], None]) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for thing in things:
        thing.start()
        stack.callback(stop, thing)
    return stack


def test_the_api_leaf_renewed_under_traffic_reaches_every_pod_with_no_failed_request_and_no_restart(
    installed: Installed, pytestconfig: pytest.Config
) -> None:
    running_system, client = installed.system, installed.system.client
    tls = Verifying(installed.ca_file)
    pods = ready_api_pods(client)
    old = secret_serial(client)
    assert old is not None
    service = running_system.api.base_url.removeprefix("https://")
    watchers = {
        name: Watcher(
            cluster.forward(running_system.cluster.run_dir, f"forward-{name}", ip, system.API_PORT), tls
        )
        for name, (_uid, _restarts, ip) in pods.items()
    }
    clients = Clients(service, tls, running_system.api.token)
    lines: list[str] = []
    with running([*watchers.values(), clients], lambda thing: thing.stop()):
        testkit.poll(
            lambda: all(w.first(old) for w in watchers.values()) and len(clients.tally.ok) == 4,
            60,
            "every pod serving the first leaf and every kind of request answered",
        )
        started = time.monotonic()
        client.request("DELETE", SECRET)
        new = testkit.poll(
            lambda: (found := secret_serial(client)) not in (None, old) and found, 30, "the renewed leaf", 0.1
        )
        written = time.monotonic()
        steps = [
            (0.0, "Secret hsm-api-tls deleted"),
            (written - started, f"renewed leaf written: serial {new:x}"),
        ]
        testkit.poll(
            testkit.syncing_pods(
                client, system.NAMESPACE, list(pods), lambda: all(w.first(new) for w in watchers.values())
            ),
            KUBELET_SYNC,
            "every pod serving the new leaf",
            1.0,
        )
        for name, watcher in watchers.items():
            first_new = watcher.first(new)
            assert first_new is not None
            steps.append((first_new - started, f"first handshake with the new leaf: {name}"))
        lines.extend(f"{at:7.2f}s  {step}" for at, step in sorted(steps))
        answered = dict(clients.tally.ok)
        testkit.poll(
            lambda: all(clients.tally.ok[kind] >= count + AFTER for kind, count in answered.items()),
            60,
            f"{AFTER} more requests of each kind once every pod serves the new leaf",
            0.5,
        )
    tally = clients.tally
    lines.append(f"requests answered: {json.dumps(tally.ok, sort_keys=True)}; failed: {len(tally.failures)}")
    lines.append(
        "handshakes per pod: "
        + ", ".join(
            f"{name} {len(w.seen)} ({sum(1 for _, s in w.seen if s == new)} new)"
            for name, w in watchers.items()
        )
    )
    report(pytestconfig, lines)
    assert tally.failures == []
    assert all(not w.failures for w in watchers.values()), {n: w.failures[:3] for n, w in watchers.items()}
    for name, watcher in watchers.items():
        switched = watcher.first(new)
        assert switched is not None
        # The files changed before the first new handshake, and every worker re-reads them at its next
        # connection: no new connection to that pod may get the old leaf after that.
        assert [s for at, s in watcher.seen if at > switched and s != new] == [], name
    # Kept-alive connections opened before the renewal were answered throughout, on the old leaf.
    assert set(clients.kept_serials.values()) == {old}
    assert {kind for kind in tally.ok} == {
        "new connection GET /health",
        "new connection GET secret",
        "kept-alive GET /health",
        "kept-alive GET secret",
    }
    assert {name: (uid, restarts) for name, (uid, restarts, _ip) in api_pods(client).items()} == {
        name: (uid, restarts) for name, (uid, restarts, _ip) in pods.items()
    }
