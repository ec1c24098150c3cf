"""Moving in from the Go operator on the devcluster (issue #20): ``kubectl hsm import`` on a running system.

The migration as docs/migrating.md describes it for a running system. The Go operator is stopped; what it
left is here: a token in its layout (``legacy_token.py``: 100 legacy paths of two keys, ambiguous,
half-written, metadata-only and misnamed ones among them, 248 objects: within the agent's budget for
SoftHSM2, 100000; a token driven by OpenSC, 120, could not hold them beside their copies and would need
``--remove-legacy`` from the first run), its users' HSMSecrets (kept across the CRD replacement, in two
namespaces, named as its newest layout names paths or with ``hsmPath``) and the Secrets it wrote for them,
with its labels and an owner reference to their HSMSecret, holding the data it read from the token (for a
half-written path: the keys it had before the crash). Our operator already runs, as in the other
operator modules, and serves the token through a real agent pod; the REST API runs with the hsm-api
ServiceAccount's RBAC inside node-1's network namespace and finds the agent pod as it does in its own pod.
A migrating user (a ServiceAccount with what the docs ask for) runs the plugin with its kubeconfig: the
mapping and the known keys come from the cluster's HSMSecrets and their Secrets.

Simulated: the Go operator's results (written by the test from the layout's documented facts), discovery
(as in the other operator modules), and the interruption: the agent process is killed with SIGKILL from the
host as soon as the first imported objects appear in the token's directory, in the middle of a
``kubectl hsm import --apply``, like a crash or a pulled plug. Killing the plugin alone would interrupt
nothing: the API's worker finishes its call to the agent.

The steps run in order; later ones rely on earlier ones.
"""

import base64
import functools
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from devcluster import access, kubeapi, realnodes, testkit
from hsm_common import constants

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

_spec = importlib.util.spec_from_file_location(
    "e2e_api_harness", pathlib.Path(__file__).with_name("test_api.py")
)
assert _spec is not None
assert _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

GP = env.GROUP_PATH
TOOL = pathlib.Path(__file__).with_name("legacy_token_tool.py")
API_RBAC = env.ROOT / "deploy" / "kustomize" / "base" / "rbac" / "api.yaml"
PATHS = 100
DEVICE = "legacy"
MIGRATOR = "migrator"
DONE = {"would-import", "imported", "already-imported"}
STEP_TIMEOUT = 120.0
LEGACY_APP, RECORD_APP = "hsm-secrets-operator", "hsm-secrets-operator/record"
"""CKA_APPLICATION of the Go operator's objects and of our records (docs/storage-format.md)."""


class Migration:
    """The running system, the token the Go operator left, and what the test wrote as the Go operator."""

    def __init__(self, op: env.Operator, device: env.Device, legacy: dict[str, Any]) -> None:
        self.op, self.device, self.legacy = op, device, legacy
        self.kube = op.kube
        suffix = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_b = f"e2e-legacy-a-{suffix}", f"e2e-legacy-b-{suffix}"
        self.url = ""
        self.ca = pathlib.Path()
        self.kubeconfig = pathlib.Path()
        self.token = ""
        self.hsmsecrets: dict[str, tuple[str, str]] = {}
        """Legacy path → (namespace, name) of the HSMSecret that reads it."""
        self.go_secrets: dict[str, dict[str, Any]] = {}
        """Legacy path → the Secret the Go operator wrote (as the API server stored it)."""
        self.killed_at = 0
        """Records on the token when the interrupted run was killed."""

    def namespace_of(self, path: str) -> str:
        return self.ns_a if path.startswith(("team-0/", "team-1/")) else self.ns_b

    def values(self, path: str) -> dict[str, bytes]:
        return {k: base64.b64decode(v) for k, v in self.legacy["secrets"][path].items()}

    @functools.cached_property
    def token_dir(self) -> pathlib.Path:
        """The token's directory in the host's store (SoftHSM2's file backend: one file per object)."""
        tokens = self.device.conf.parent / "tokens"
        label = self.device.label.encode()
        return next(d for d in tokens.iterdir() if label in (d / "token.object").read_bytes())

    def object_files(self) -> set[str]:
        return {p.name for p in self.token_dir.glob("*.object") if p.name != "token.object"}

    def count(self) -> dict[str, int]:
        """The token's legacy objects and our records, read with python-pkcs11 in another process."""
        counted: dict[str, int] = json.loads(tool(self.device.conf, "count", self.device.label))
        realnodes.give_tokens(self.device.conf)  # whatever SoftHSM2 rewrote stays the agents'
        return {"legacy": counted.get(LEGACY_APP, 0), "records": counted.get(RECORD_APP, 0)}

    def kubectl_hsm(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.plugin_argv(*args), env=self.plugin_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def plugin_argv(self, *args: str) -> list[str]:
        return [
            sys.executable, "-m", "kubectl_hsm.cli", "--server", self.url,
            "--certificate-authority", str(self.ca), "--kubeconfig", str(self.kubeconfig), *args,
        ]  # fmt: skip

    def plugin_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("HSM_TOKEN", "HSM_API_URL", "KUBECONFIG")}

    def run_import(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``kubectl hsm import --json`` with args: its exit code and its report."""
        done = subprocess.run(
            self.plugin_argv("import", "--json", *args),
            env=self.plugin_env(), capture_output=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.stdout, done.stderr.decode()
        report: dict[str, Any] = json.loads(done.stdout)
        return done.returncode, report

    def listed(self, namespace: str) -> dict[str, int]:
        """Our secrets under namespace, as the API lists them: path → version."""
        response = requests.get(
            f"{self.url}/api/v1/hsm/secrets",
            params={"namespace": namespace, "limit": "500"},
            headers={"Authorization": f"Bearer {self.token}"},
            verify=str(self.ca),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return {item["path"]: item["version"] for item in response.json()["data"]["items"]}

    def secret(self, path: str) -> dict[str, Any]:
        namespace, name = self.hsmsecrets[path]
        return env.get(self.kube, f"/api/v1/namespaces/{namespace}/secrets/{name}") or {}

    def status(self, path: str) -> dict[str, Any]:
        namespace, name = self.hsmsecrets[path]
        found = env.get(self.kube, f"{GP}/namespaces/{namespace}/hsmsecrets/{name}") or {}
        return found.get("status") or {}


def tool(conf: pathlib.Path, *args: str) -> str:
    """legacy_token_tool.py on the host's store conf; the PIN goes on stdin, never on argv."""
    done = subprocess.run(
        [sys.executable, str(TOOL), *args],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        input=env.PIN, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def paths_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The one device's results by legacy path (the report must come from one device that answered)."""
    [device] = report["devices"]
    assert device["error"] is None, device["error"]
    return {item["legacyPath"]: item for item in device["paths"]}


def deploy_legacy_device(op: env.Operator) -> tuple[env.Device, dict[str, Any]]:
    """env.deploy_device with the Go operator's objects written on the token before its agent starts."""
    kube, namespace, node = op.kube, op.namespace, env.OPERATOR_NODE_NAME
    conf = kube.softhsm_conf(node)
    label = f"e2e-{uuid.uuid4().hex[:8]}"
    serial = env.make_token(conf, label)
    heartbeat: env.Heartbeat | None = None
    try:
        legacy: dict[str, Any] = json.loads(tool(conf, "populate", label, str(PATHS)))
        realnodes.give_tokens(conf)
        kube.client.request(
            "POST", f"{GP}/namespaces/{namespace}/hsmdevices", env.device_manifest(namespace, DEVICE, label)
        )
        env.report_device(kube, namespace, DEVICE, serial, node)
        heartbeat = env.Heartbeat(kube, namespace, DEVICE, serial, node)
        heartbeat.start()
        testkit.poll(lambda: env.pool_phase(kube, namespace, DEVICE) == "Ready", 60, "the pool Ready")
        pod = testkit.poll(
            lambda: env.ready_agent_pod(kube, namespace, DEVICE) or {}, 90, "the agent pod Running and Ready"
        )
    except BaseException:
        if heartbeat is not None:
            heartbeat.stop()
        env.delete_token(conf, label)
        raise
    stub = env.agent_stub(kube, namespace, pod)
    return env.Device(DEVICE, label, serial, node, conf, stub, heartbeat), legacy


def create_go_era_objects(m: Migration) -> None:
    """The users' HSMSecrets and the Secrets the Go operator wrote for them (its labels, its owner reference,
    the data it read). No HSMSecret can name the misnamed path; the metadata-only one has no Secret."""
    kube = m.kube
    for namespace in (m.ns_a, m.ns_b):
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    for path, keys in m.legacy["known"].items():
        if path in m.legacy["invalid"]:
            continue
        namespace, name = m.namespace_of(path), path.replace("/", "-")
        spec: dict[str, Any] = {"device": DEVICE} | ({} if path == name else {"hsmPath": path})
        made = kube.client.request(
            "POST", f"{GP}/namespaces/{namespace}/hsmsecrets", env.hsmsecret_manifest(namespace, name, **spec)
        )
        m.hsmsecrets[path] = (namespace, name)
        if path in m.legacy["empty"]:
            continue
        data = m.values(path)
        for key in keys:
            # A half-written path: the Go operator's Secret still holds the value the crash lost on the token.
            data.setdefault(key, f"{key} before the crash".encode())
        owner = {"apiVersion": constants.API_VERSION, "kind": constants.KIND_SECRET, "name": name}
        secret = {
            "metadata": {
                "name": name,
                "labels": {"managed-by": "hsm-secrets-operator", "hsm-path": name},
                "annotations": {"hsm.j5t.io/source": "go-operator"},
                "ownerReferences": [
                    {**owner, "uid": made["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
                ],
            },
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        m.go_secrets[path] = kube.client.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)


def render_rbac(namespace: str, extra: list[dict[str, Any]]) -> str:
    """api.yaml and extra in the operator namespace (cluster objects made unique, labelled to go with it)."""
    docs = [d for d in yaml.safe_load_all(API_RBAC.read_text()) if d] + extra
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] += f"-{namespace}"
            doc["metadata"].setdefault("labels", {})[env.E2E_LABEL] = namespace
        else:
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += f"-{namespace}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def migrator_rbac() -> list[dict[str, Any]]:
    """What docs/migrating.md asks of the user: update on the HSMDevices, create on hsmsecrets in the target
    namespaces; and to read the cluster's HSMSecrets and the keys of their Secrets."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": MIGRATOR}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": MIGRATOR},
            "rules": [
                {
                    "apiGroups": ["hsm.j5t.io"],
                    "resources": ["hsmsecrets"],
                    "verbs": ["get", "list", "create"],
                },
                {"apiGroups": ["hsm.j5t.io"], "resources": ["hsmdevices"], "verbs": ["get", "update"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": MIGRATOR},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": MIGRATOR},
            "subjects": [{"kind": "ServiceAccount", "name": MIGRATOR}],
        },
    ]


def start_api(m: Migration, tmp: pathlib.Path) -> subprocess.Popen[bytes]:
    """hsm-manager api as the hsm-api ServiceAccount in node-1's network namespace (it reaches the agent pod
    there, as from its own pod), serving HTTPS for localhost; its address on the host goes into m.url."""
    kube, namespace = m.kube, m.op.namespace
    config = kube.service_account_kubeconfig(namespace, "hsm-api", tmp / "hsm-api.kubeconfig", in_node=True)
    tls = harness.serving_files(tmp)
    [port] = env.free_ports(kube, 1)
    (tmp / "prometheus").mkdir()
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "HSM_MANAGER_"))}
    process_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus")
    command = [
        sys.executable, "-m", "hsm_manager", "api", "--listen", f"127.0.0.1:{port}", "--metrics-listen=",
        "--workers", "1", "--threads", "4", "--device-namespace", namespace, "--kubeconfig", str(config),
        "--log-level", "warning", *tls.flags(),
    ]  # fmt: skip
    with (tmp / "api.log").open("ab") as log:
        server = subprocess.Popen(
            kube.in_node(command, env.OPERATOR_NODE), env=process_env, stdout=log, stderr=log
        )
    m.url = f"https://localhost:{kube.forward('127.0.0.1', port, env.OPERATOR_NODE).rsplit(':', 1)[1]}"
    m.ca = tls.ca
    testkit.poll(lambda: harness._get_ok(f"{m.url}/api/v1/health", str(tls.ca)), 90, "the API ready")
    return server


def other_hsmsecrets(kube: testkit.Kube) -> list[str]:
    """Every HSMSecret of the cluster (a placeholder while the API server's cache of them starts)."""
    try:
        found = kube.client.get(f"{GP}/hsmsecrets")["items"]
    except kubeapi.ApiError as exc:
        if exc.status == 429:  # "storage is (re)initializing" right after the CRDs were applied
            return ["(not listed yet)"]
        raise
    return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in found]


@pytest.fixture(scope="module")
def migration(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migration]:
    if kube.devcluster is None:
        pytest.skip(
            "needs the local devcluster (the operator and the API run in one of its nodes' namespaces)"
        )
    tmp = tmp_path_factory.mktemp("import-legacy")
    op = env.start_operator(kube, tmp, ("--default-sync-interval=30s",))
    device: env.Device | None = None
    m: Migration | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        # The plugin maps paths by every HSMSecret of the cluster: earlier modules' must be gone.
        testkit.poll(lambda: not other_hsmsecrets(kube), STEP_TIMEOUT, "no HSMSecret left by other modules")
        device, legacy = deploy_legacy_device(op)
        m = Migration(op, device, legacy)
        create_go_era_objects(m)
        kube.kubectl("apply", "-f", "-", stdin=render_rbac(op.namespace, migrator_rbac()))
        m.kubeconfig = kube.service_account_kubeconfig(op.namespace, MIGRATOR, tmp / "migrator.kubeconfig")
        m.token = access.service_account_token(kube.client, op.namespace, MIGRATOR)
        server = start_api(m, tmp)
        yield m
    finally:
        if server is not None:
            harness.stop(server)
        env.remove_operator(op)
        if device is not None:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)
        if m is not None:
            for namespace in (m.ns_a, m.ns_b):
                kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def test_before_the_import_the_hsmsecrets_keep_the_secrets_the_go_operator_wrote(
    migration: Migration,
) -> None:
    m = migration
    ready = m.legacy["ready"]
    testkit.poll(
        lambda: all(m.status(p).get("syncStatus") == "Error" for p in ready),
        STEP_TIMEOUT,
        "every HSMSecret of a legacy path reported",
        period=1.0,
    )
    reasons = {c["reason"] for p in ready for c in m.status(p)["conditions"] if c["type"] == "Ready"}
    assert reasons == {"SecretNotFoundOnHSM"}
    assert all(m.secret(p)["data"] == m.go_secrets[p]["data"] for p in m.go_secrets)


def test_a_dry_run_shows_the_plan_and_changes_nothing(migration: Migration) -> None:
    m, legacy = migration, migration.legacy
    files, secrets = m.object_files(), {p: m.secret(p)["metadata"]["resourceVersion"] for p in m.go_secrets}
    code, report = m.run_import()
    assert code == 1  # some paths cannot be imported: every one is reported
    assert report["applied"] is False
    assert report["clashes"] == {}
    [device] = report["devices"]
    assert device["legacyObjects"] == legacy["objects"]
    found = paths_of(report)
    planned = {p: (r["outcome"], r["target"]) for p, r in found.items() if r["outcome"] in DONE}
    assert planned == {p: ("would-import", f"{m.namespace_of(p)}/{p}") for p in legacy["ready"]}
    assert {p: found[p]["missingKeys"] for p in legacy["incomplete"]} == legacy["incomplete"]
    assert {found[p]["status"] for p in legacy["incomplete"]} == {"incomplete"}
    assert {found[p]["status"] for p in legacy["ambiguousPaths"]} == {"ambiguous"}
    assert {found[p]["status"] for p in legacy["empty"]} == {"empty"}
    assert all(found[p]["outcome"] not in DONE for p in legacy["invalid"])
    assert {item["label"] for item in device["undecided"]} == set(legacy["ambiguousLabels"])
    assert report["summary"]["would-import"] == len(legacy["ready"])
    text = subprocess.run(
        m.plugin_argv("import"), env=m.plugin_env(), capture_output=True, timeout=180, check=False
    )
    assert text.returncode == 1
    assert text.stdout.decode().splitlines()[0] == "dry run: nothing is written (--apply imports)"
    values = [v for p in legacy["secrets"] for v in m.values(p).values() if len(v) >= 8]
    assert not [v for v in values if v in text.stdout or base64.b64encode(v) in text.stdout]
    assert m.object_files() == files
    assert m.count() == {"legacy": legacy["objects"], "records": 0}
    assert m.listed(m.ns_a) == {}
    assert m.listed(m.ns_b) == {}
    assert {p: m.secret(p)["metadata"]["resourceVersion"] for p in m.go_secrets} == secrets


def agent_processes(label: str) -> list[int]:
    """Host pids of the agent serving the token labelled label (its argv names the token)."""
    wanted = f"--token-label={label}".encode()
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and wanted in (proc / "cmdline").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def restarts(m: Migration) -> int:
    pod = env.ready_agent_pod(m.kube, m.op.namespace, DEVICE) or {}
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(c.get("restartCount", 0)) for c in statuses) if pod else -1


def test_an_import_killed_mid_way_is_reported_and_a_rerun_imports_every_path_once(
    migration: Migration,
) -> None:
    m, ready = migration, migration.legacy["ready"]
    before, restarted = m.object_files(), restarts(m)
    assert restarted >= 0
    pids = agent_processes(m.device.label)
    assert pids
    plugin = m.kubectl_hsm("import", "--json", "--apply")
    deadline = time.monotonic() + STEP_TIMEOUT
    # Killed once a few paths are written (one object each), well before the last.
    while len(m.object_files() - before) < 5:
        assert plugin.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline, "the import wrote nothing"
        time.sleep(0.002)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out, err = plugin.communicate(timeout=STEP_TIMEOUT)
    assert plugin.returncode == 1, err.decode()
    [device] = json.loads(out)["devices"]
    assert device["error"] is not None
    m.killed_at = m.count()["records"]
    assert 0 < m.killed_at < len(ready)
    testkit.poll(lambda: restarts(m) > restarted, STEP_TIMEOUT, "the agent restarted and Ready")

    code, report = m.run_import("--apply")
    assert code == 1  # the ambiguous, half-written, empty and misnamed paths are still reported
    found = paths_of(report)
    outcomes = {p: found[p]["outcome"] for p in ready}
    assert set(outcomes.values()) == {"imported", "already-imported"}
    assert list(outcomes.values()).count("already-imported") == m.killed_at
    assert {p: r["outcome"] for p, r in found.items() if p not in ready} == {
        p: "skipped" for p in found if p not in ready
    }
    listed = m.listed(m.ns_a) | m.listed(m.ns_b)
    assert listed == {f"{m.namespace_of(p)}/{p}": 1 for p in ready}  # each written once


def test_the_secrets_of_the_hsmsecrets_end_up_in_sync_with_the_legacy_data(migration: Migration) -> None:
    m, ready = migration, migration.legacy["ready"]

    def in_sync(path: str) -> bool:
        wanted = {k: base64.b64encode(v).decode() for k, v in m.values(path).items()}
        return m.status(path).get("syncStatus") == "InSync" and m.secret(path).get("data") == wanted

    testkit.poll(
        lambda: all(in_sync(p) for p in ready),
        STEP_TIMEOUT,
        "every imported path's Secret in sync",
        period=1.0,
    )
    for path in ready:
        meta = m.secret(path)["metadata"]
        assert meta["labels"][constants.LABEL_MANAGED_BY] == constants.MANAGED_BY_VALUE
        assert meta["uid"] == m.go_secrets[path]["metadata"]["uid"]  # updated in place, never deleted
    for path in set(m.go_secrets) - set(ready):
        assert (
            m.secret(path)["metadata"]["resourceVersion"] == m.go_secrets[path]["metadata"]["resourceVersion"]
        )


def test_remove_legacy_removes_the_imported_paths_legacy_objects_and_our_secrets_stay(
    migration: Migration,
) -> None:
    m, legacy, ready = migration, migration.legacy, migration.legacy["ready"]
    code, report = m.run_import("--apply", "--remove-legacy")
    assert code == 1
    found = paths_of(report)
    assert {found[p]["outcome"] for p in ready} == {"already-imported"}
    assert all(found[p]["legacyRemoved"] == found[p]["legacyObjects"] > 0 for p in ready)
    removed = sum(found[p]["legacyRemoved"] for p in ready)
    assert report["summary"]["legacyRemoved"] == removed
    assert m.count() == {"legacy": legacy["objects"] - removed, "records": len(ready)}
    _, last = m.run_import()
    assert not set(paths_of(last)) & set(ready)
    assert m.listed(m.ns_a) | m.listed(m.ns_b) == {f"{m.namespace_of(p)}/{p}": 1 for p in ready}
    for path in ready:
        wanted = {k: base64.b64encode(v).decode() for k, v in m.values(path).items()}
        assert m.secret(path)["data"] == wanted
        assert m.status(path)["syncStatus"] == "InSync"
