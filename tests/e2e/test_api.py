"""The REST API against the cluster's real TokenReview and SubjectAccessReview, as the hsm-api ServiceAccount.

gunicorn runs ``hsm-manager api`` with the kubeconfig of the hsm-api ServiceAccount (RBAC from
deploy/kustomize/base/rbac/api.yaml) and two real agents on SoftHSM2 tokens; callers are
ServiceAccounts with tokens from TokenRequest and Roles granting exactly what each test needs.
"""

import base64
import dataclasses
import datetime
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

from devcluster import access, kubectl, ports, testkit

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "deploy" / "kustomize" / "base" / "crds"
RBAC = ROOT / "deploy" / "kustomize" / "base" / "rbac" / "api.yaml"
PIN = "123456"
DEVICE = "pair"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def rbac_for(namespace: str) -> str:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] += f"-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += f"-{namespace}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def grant(
    kube: testkit.Kube, namespace: str, user_ns: str, user: str, resource: str, verbs: list[str]
) -> None:
    """A Role in namespace granting verbs on resource to ServiceAccount user_ns/user."""
    name = f"{user}-{resource}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [{"apiGroups": ["hsm.j5t.io"], "resources": [resource], "verbs": verbs}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": user_ns}],
    }
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([role, binding]))


def start_agent(root: pathlib.Path, name: str) -> subprocess.Popen[bytes]:
    tokens = root / name / "tokens"
    tokens.mkdir(parents=True)
    conf = root / name / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", name, "--pin", PIN, "--so-pin", "12345678"],
        env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    (root / name / "pin").write_text(PIN)
    port, health = ports.free_port(), ports.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hsm_agent", "--token-label", name, "--pin-file", str(root / name / "pin"),
         "--listen", f"127.0.0.1:{port}", "--health-listen", f"127.0.0.1:{health}", "--metrics-listen=",
         "--device-name", name, "--pcscd", "never", "--log-level", "warning"],
        env=env, stderr=(root / name / "agent.log").open("wb"),
    )  # fmt: skip
    testkit.poll(lambda: _get_ok(f"http://127.0.0.1:{health}/readyz"), 20, f"agent {name} ready")
    process.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    return process


def _get_ok(url: str, verify: str | bool = True) -> bool:
    try:
        return requests.get(url, timeout=1, verify=verify).status_code == 200
    except requests.RequestException:
        return False


@dataclasses.dataclass(frozen=True)
class ServingFiles:
    """A serving certificate for localhost (the API answers HTTPS only), its key, and the CA of both."""

    cert: pathlib.Path
    key: pathlib.Path
    ca: pathlib.Path

    def flags(self) -> list[str]:
        return ["--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key)]


def serving_files(root: pathlib.Path) -> ServingFiles:
    """A throwaway CA and a localhost leaf it signed, written under root."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def signed(subject: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey) -> bytes:
        ca = subject == "e2e CA"
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e CA")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = ServingFiles(root / "tls.crt", root / "tls.key", root / "ca.crt")
    files.ca.write_bytes(signed("e2e CA", ca_key, ca_key))
    files.cert.write_bytes(signed("localhost", leaf_key, ca_key))
    files.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Setup:
    def __init__(
        self, url: str, system: str, ns_a: str, ns_b: str, tokens: dict[str, str], ca: pathlib.Path
    ) -> None:
        self.url, self.system, self.ns_a, self.ns_b, self.tokens = url, system, ns_a, ns_b, tokens
        self.ca = ca
        """The CA the API's certificate is verified with."""

    def call(self, method: str, route: str, user: str | None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        kwargs.setdefault("verify", str(self.ca))
        return requests.request(method, self.url + route, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def api(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """hsm-manager api as the hsm-api ServiceAccount, two agents, users alice (ns A), admin, nobody."""
    tmp = tmp_path_factory.mktemp("api-e2e")
    kube.apply_kustomization(CRD_DIR)
    kube.wait_crds_established(
        [d["metadata"]["name"] for d in yaml.safe_load_all(kubectl.kustomize(CRD_DIR)) if d]
    )
    suffix = uuid.uuid4().hex[:6]
    system, ns_a, ns_b = f"e2e-api-sys-{suffix}", f"e2e-api-a-{suffix}", f"e2e-api-b-{suffix}"
    for namespace in (system, ns_a, ns_b):
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube.kubectl("apply", "-f", "-", stdin=rbac_for(system))
    for user in ("alice", "admin", "nobody"):
        kube.client.request(
            "POST", f"/api/v1/namespaces/{system}/serviceaccounts", {"metadata": {"name": user}}
        )
    every = ["get", "list", "create", "update", "patch", "delete"]
    grant(kube, ns_a, system, "alice", "hsmsecrets", every)
    grant(kube, ns_a, system, "admin", "hsmsecrets", every)
    grant(kube, ns_b, system, "admin", "hsmsecrets", every)
    grant(kube, system, system, "admin", "hsmdevices", ["get", "update"])
    kube.client.request(
        "POST",
        f"/api/v1/namespaces/{system}/secrets",
        {"metadata": {"name": "pin"}, "stringData": {"pin": PIN}},
    )
    device = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMDevice",
        "metadata": {"name": DEVICE, "namespace": system},
        "spec": {
            "deviceType": "PicoHSM",
            "pkcs11": {
                "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
                "pinSecret": {"name": "pin", "key": "pin"},
            },
        },
    }
    kube.client.request("POST", f"/apis/hsm.j5t.io/v1alpha1/namespaces/{system}/hsmdevices", device)
    tokens = {
        user: access.service_account_token(kube.client, system, user) for user in ("alice", "admin", "nobody")
    }
    config = kube.service_account_kubeconfig(system, "hsm-api", tmp / "hsm-api.kubeconfig")
    agents = [start_agent(tmp, "hsm-a"), start_agent(tmp, "hsm-b")]
    static = {
        DEVICE: [
            {"name": name, "address": a.address} for name, a in zip(("hsm-a", "hsm-b"), agents, strict=True)
        ]
    }  # type: ignore[attr-defined]
    port = ports.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "HSM_MANAGER_"))}
    env |= {
        "HSM_MANAGER_KUBECONFIG": str(config),
        "HSM_MANAGER_DEVICE_NAMESPACE": system,
        "HSM_MANAGER_STATIC_AGENTS": json.dumps(static),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp),
    }
    tls = serving_files(tmp)
    server = subprocess.Popen(
        [sys.executable, "-m", "hsm_manager", "api", "--listen", f"127.0.0.1:{port}",
         "--metrics-listen", f"127.0.0.1:{ports.free_port()}", "--workers", "2", *tls.flags()],
        env=env, stderr=(tmp / "api.log").open("wb"),
    )  # fmt: skip
    try:
        url = f"https://localhost:{port}"
        testkit.poll(lambda: _get_ok(f"{url}/api/v1/health", str(tls.ca)), 90, "the API ready")
        setup = Setup(url, system, ns_a, ns_b, tokens, tls.ca)
        seeded = setup.call(
            "POST", f"/api/v1/hsm/secrets/{ns_a}/seed", "admin", json={"data": {"k": b64(b"v")}}
        )
        assert seeded.status_code == 201, seeded.text
        yield setup
    finally:
        stop(server)
        for agent in agents:
            stop(agent)
        for namespace in (system, ns_a, ns_b):
            kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def routes(setup: Setup) -> list[tuple[str, str, Any]]:
    """(method, route, body) of every route but /health; the admin may do all of them."""
    s, a = "/api/v1/hsm/secrets", setup.ns_a
    return [
        ("GET", "/api/v1/info", None),
        ("GET", "/api/v1/openapi.json", None),
        ("GET", "/api/v1/hsm/info", None),
        ("GET", "/api/v1/hsm/status", None),
        ("GET", "/api/v1/hsm/pools", None),
        ("GET", f"{s}?namespace={a}", None),
        ("GET", f"{s}/{a}/seed", None),
        ("GET", f"{s}/{a}/seed/metadata", None),
        ("GET", f"{s}/{a}/seed/checksum", None),
        ("GET", f"{s}/{a}/seed/versions", None),
        ("POST", f"{s}/{a}/made", {"data": {"k": b64(b"v")}}),
        ("PUT", f"{s}/{a}/seed", {"data": {"k": b64(b"v2"), "j": b64(b"x")}}),
        ("PATCH", f"{s}/{a}/seed", {"data": {"i": b64(b"v3")}}),
        ("DELETE", f"{s}/{a}/seed?key=j", None),
        ("DELETE", f"{s}/{a}/made", None),
        ("POST", "/api/v1/hsm/mirror/sync", {}),
        ("POST", "/api/v1/hsm/change-pin", {"oldPin": PIN, "newPin": PIN}),
    ]


ROUTE_IDS = [f"{i:02d}" for i in range(17)]


@pytest.mark.parametrize("index", range(17), ids=ROUTE_IDS)
def test_every_route_needs_a_valid_token(api: Setup, index: int) -> None:
    method, route, body = routes(api)[index]
    assert api.call(method, route, None, json=body).status_code == 401
    api.tokens["forged"] = "not-a-token"
    assert api.call(method, route, "forged", json=body).status_code == 401


@pytest.mark.parametrize("index", range(17), ids=ROUTE_IDS)
def test_every_route_refuses_a_user_without_permission(api: Setup, index: int) -> None:
    method, route, body = routes(api)[index]
    response = api.call(method, route, "nobody", json=body)
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("index", range(17), ids=ROUTE_IDS)
def test_every_route_serves_a_permitted_user(api: Setup, index: int) -> None:
    method, route, body = routes(api)[index]
    response = api.call(method, route, "admin", json=body)
    assert 200 <= response.status_code < 300, response.text


def test_health_needs_no_token(api: Setup) -> None:
    assert api.call("GET", "/api/v1/health", None).status_code == 200


def test_secrets_named_like_open_routes_get_no_bypass(api: Setup) -> None:
    for name in ("health", "healthz", "auth/token"):
        assert api.call("GET", f"/api/v1/hsm/secrets/{api.ns_a}/{name}", None).status_code == 401


def test_a_user_of_namespace_a_cannot_read_or_write_namespace_b(api: Setup) -> None:
    secret = f"/api/v1/hsm/secrets/{api.ns_b}/private"
    assert api.call("POST", secret, "admin", json={"data": {"k": b64(b"b")}}).status_code == 201
    assert api.call("GET", secret, "alice").status_code == 403
    assert api.call("PUT", secret, "alice", json={"data": {"k": b64(b"x")}}).status_code == 403
    assert api.call("DELETE", secret, "alice").status_code == 403
    assert api.call("GET", f"/api/v1/hsm/secrets?namespace={api.ns_b}", "alice").status_code == 403
    assert api.call("GET", secret, "admin").json()["data"]["data"] == {"k": b64(b"b")}


def test_a_user_of_namespace_a_works_in_namespace_a(api: Setup) -> None:
    secret = f"/api/v1/hsm/secrets/{api.ns_a}/alices"
    assert api.call("POST", secret, "alice", json={"data": {"k": b64(b"\x00a")}}).status_code == 201
    assert api.call("GET", secret, "alice").json()["data"]["data"] == {"k": b64(b"\x00a")}


def test_each_user_is_offered_only_the_namespaces_it_may_list(api: Setup) -> None:
    """The console's namespace picker, answered by real SubjectAccessReviews for each ServiceAccount."""
    stored = f"/api/v1/hsm/secrets/{api.ns_b}/offered"
    assert api.call("PUT", stored, "admin", json={"data": {"k": b64(b"b")}}).status_code in (200, 201)

    def offered(user: str) -> list[str]:
        response = api.call("GET", "/api/v1/hsm/namespaces", user)
        assert response.status_code == 200, response.text
        body = response.json()["data"]
        assert body["complete"] is True
        return [ns for ns in body["namespaces"] if ns.startswith("e2e-api-")]

    assert offered("admin") == sorted([api.ns_a, api.ns_b])
    assert offered("alice") == [api.ns_a]
    assert offered("nobody") == []
    assert api.call("GET", "/api/v1/hsm/namespaces", None).status_code == 401


def test_the_pools_route_reads_the_hsmpool_as_the_apis_service_account(
    api: Setup, kube: testkit.Kube
) -> None:
    """The hsm-api Role's read of HSMPools, with a pool and status written here in the operator's place."""
    pools = f"/apis/hsm.j5t.io/v1alpha1/namespaces/{api.system}/hsmpools"
    pool = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMPool",
        "metadata": {
            "name": f"{DEVICE}-pool",
            "namespace": api.system,
            "labels": {"hsm.j5t.io/device": DEVICE},
        },
        "spec": {},
    }
    kube.client.request("POST", pools, pool)
    kube.client.request(
        "PATCH",
        f"{pools}/{DEVICE}-pool/status",
        {"status": {"phase": "Ready", "totalDevices": 2, "availableDevices": 2}},
        "application/merge-patch+json",
    )
    response = api.call("GET", "/api/v1/hsm/pools", "admin")
    assert response.status_code == 200, response.text
    (shown,) = response.json()["data"]["pools"]
    assert (shown["name"], shown["hsmDevice"], shown["phase"]) == (f"{DEVICE}-pool", DEVICE, "Ready")
    assert (shown["totalDevices"], shown["availableDevices"]) == (2, 2)


def test_a_user_without_device_permission_cannot_change_the_pin(api: Setup) -> None:
    response = api.call("POST", "/api/v1/hsm/change-pin", "alice", json={"oldPin": PIN, "newPin": "654321"})
    assert response.status_code == 403


def test_change_pin_updates_the_pin_secret(api: Setup, kube: testkit.Kube) -> None:
    secret = f"/api/v1/namespaces/{api.system}/secrets/pin"
    kube.client.request("PATCH", secret, {"data": {"pin": b64(b"stale")}}, "application/merge-patch+json")
    response = api.call("POST", "/api/v1/hsm/change-pin", "admin", json={"oldPin": PIN, "newPin": PIN})
    assert response.status_code == 200, response.text
    assert base64.b64decode(kube.client.get(secret)["data"]["pin"]) == PIN.encode()


def test_change_pin_is_rolled_back_when_the_pin_secret_cannot_be_written(
    api: Setup, kube: testkit.Kube
) -> None:
    secret = f"/api/v1/namespaces/{api.system}/secrets/pin"
    kube.client.request("DELETE", secret)
    try:
        response = api.call(
            "POST", "/api/v1/hsm/change-pin", "admin", json={"oldPin": PIN, "newPin": "654321"}
        )
        assert response.status_code == 404, response.text
        assert sorted(response.json()["error"]["details"]["rolledBack"]) == ["hsm-a", "hsm-b"]
    finally:
        kube.client.request(
            "POST",
            f"/api/v1/namespaces/{api.system}/secrets",
            {"metadata": {"name": "pin"}, "stringData": {"pin": PIN}},
        )
    # The devices kept the old PIN: changing from it still works.
    again = api.call("POST", "/api/v1/hsm/change-pin", "admin", json={"oldPin": PIN, "newPin": PIN})
    assert again.status_code == 200, again.text


# ---------------------------------------------------------------- with the operator's agent registry


@dataclasses.dataclass
class Full:
    url: str
    token: str
    namespace: str
    operator_namespace: str
    device: str
    ca: pathlib.Path


@pytest.fixture(scope="module")
def full(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Full]:
    """Operator + an agent pod it deployed (mTLS) + the API finding it through the agent registry."""
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the API runs in a node's network namespace)")
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import operator_env as env

    tmp = tmp_path_factory.mktemp("api-full")
    op = env.start_operator(kube, tmp, ("--default-sync-interval=30s",))
    device = None
    server = None
    user_ns = f"e2e-api-u-{uuid.uuid4().hex[:6]}"
    try:
        device = env.deploy_device(op, "full")
        if not _mtls_works(device):
            pytest.fail("the operator's mTLS client cannot reach the agent it deployed")
        kube.kubectl("apply", "-f", "-", stdin=rbac_for(op.namespace))
        kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": user_ns}})
        kube.client.request(
            "POST", f"/api/v1/namespaces/{op.namespace}/serviceaccounts", {"metadata": {"name": "writer"}}
        )
        grant(
            kube,
            user_ns,
            op.namespace,
            "writer",
            "hsmsecrets",
            ["get", "list", "create", "update", "patch", "delete"],
        )
        grant(kube, op.namespace, op.namespace, "writer", "hsmdevices", ["get"])
        token = access.service_account_token(kube.client, op.namespace, "writer")
        config = kube.service_account_kubeconfig(
            op.namespace, "hsm-api", tmp / "hsm-api.kubeconfig", in_node=True
        )
        port, metrics_port = env.free_ports(kube, 2)
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "HSM_MANAGER_"))}
        environ |= {
            "HSM_MANAGER_KUBECONFIG": str(config),
            "HSM_MANAGER_DEVICE_NAMESPACE": op.namespace,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        }
        tls = serving_files(tmp)
        # In node-1's network namespace, as from its pod: the registry gives it the agents' pod IPs.
        server = subprocess.Popen(
            kube.in_node(
                [sys.executable, "-m", "hsm_manager", "api", "--listen", f"127.0.0.1:{port}",
                 "--metrics-listen", f"127.0.0.1:{metrics_port}", "--workers", "2", *tls.flags()]
            ),
            env=environ, stderr=(tmp / "api.log").open("wb"),
        )  # fmt: skip
        forwarded_port = kube.forward("127.0.0.1", port).rsplit(":", 1)[1]
        url = f"https://localhost:{forwarded_port}"
        testkit.poll(lambda: _get_ok(f"{url}/api/v1/health", str(tls.ca)), 90, "the API ready")
        yield Full(url, token, user_ns, op.namespace, "full", tls.ca)
    finally:
        if server is not None:
            stop(server)
            print((tmp / "api.log").read_text()[-3000:])
        env.remove_operator(op)
        if device is not None:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)
        kube.client.request("DELETE", f"/api/v1/namespaces/{user_ns}")


def _mtls_works(device: Any, timeout: float = 20.0) -> bool:
    """True once the manager's client certificate gets a GetInfo through to the agent."""
    from hsmproto.v1 import hsm_pb2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            device.stub.GetInfo(hsm_pb2.GetInfoRequest(), timeout=5)
        except Exception:
            time.sleep(0.5)
            continue
        return True
    return False


def _call(full: Full, method: str, route: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {full.token}"}
    kwargs.setdefault("verify", str(full.ca))
    return requests.request(method, full.url + route, headers=headers, timeout=30, **kwargs)


def test_the_api_finds_the_operators_agent_through_the_registry(full: Full) -> None:
    info = _call(full, "GET", "/api/v1/hsm/info").json()
    assert info["data"]["hsmDevice"] == full.device
    (agent,) = info["data"]["devices"]
    assert agent["available"] is True, agent


def test_a_write_through_the_api_reaches_the_hsmsecrets_secret(full: Full, kube: testkit.Kube) -> None:
    kube.client.request(
        "POST",
        f"/apis/hsm.j5t.io/v1alpha1/namespaces/{full.namespace}/hsmsecrets",
        {
            "apiVersion": "hsm.j5t.io/v1alpha1",
            "kind": "HSMSecret",
            "metadata": {"name": "db", "namespace": full.namespace},
            "spec": {"device": full.device},
        },
    )
    route = f"/api/v1/hsm/secrets/{full.namespace}/db"
    created = _call(full, "POST", route, json={"data": {"password": b64(b"first")}})
    assert created.status_code == 201, created.text

    def secret_data() -> dict[str, str] | None:
        try:
            found = kube.client.get(f"/api/v1/namespaces/{full.namespace}/secrets/db")
        except Exception:
            return None
        data: dict[str, str] = found.get("data") or {}
        return data

    testkit.poll(
        lambda: (secret_data() or {}).get("password") == b64(b"first"), 20, "the Secret with the first value"
    )
    started = time.monotonic()
    updated = _call(full, "PUT", route, json={"data": {"password": b64(b"second")}})
    assert updated.status_code == 200, updated.text
    testkit.poll(lambda: (secret_data() or {}).get("password") == b64(b"second"), 20, "the Secret updated")
    print(f"\nAPI PUT -> Secret updated in {time.monotonic() - started:.3f} s")
