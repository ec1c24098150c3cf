"""HSMSecret sync end to end: operator as its ServiceAccount, a real hsm-agent pod on a SoftHSM2 token.

Token in node-1's store → HSMDevice → discovery report → pool Ready → agent Deployment → node-1's kubelet
runs the agent image → writes through gRPC (mTLS, the manager's client certificate, through a forwarder
into node-1) → the HSMSecret's Secret. Latencies are printed (run with -s to see them).
"""

import base64
import functools
import pathlib
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import nodes, testkit
from hsm_common import constants
from hsmproto.v1 import hsm_pb2

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

GP = env.GROUP_PATH


class Stack:
    def __init__(self, op: env.Operator, device: env.Device) -> None:
        self.op, self.device = op, device

    @property
    def kube(self) -> testkit.Kube:
        return self.op.kube

    def write(self, path: str, data: dict[str, bytes]) -> int:
        answer = self.device.stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)), timeout=10
        )
        return int(answer.version)

    def delete(self, path: str) -> None:
        self.device.stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path=path), timeout=10)

    def hsmsecret(self, namespace: str, name: str, **spec: Any) -> None:
        spec.setdefault("device", self.device.name)
        self.kube.client.request(
            "POST", f"{GP}/namespaces/{namespace}/hsmsecrets", env.hsmsecret_manifest(namespace, name, **spec)
        )

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return env.get(self.kube, f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = env.get(self.kube, f"{GP}/namespaces/{namespace}/hsmsecrets/{name}") or {}
        return obj.get("status") or {}

    def secret_holding(
        self, namespace: str, name: str, data: dict[str, bytes], timeout: float
    ) -> dict[str, Any]:
        wanted = {k: base64.b64encode(v).decode() for k, v in data.items()}
        return testkit.poll(
            lambda: (s := self.secret(namespace, name)) and s.get("data") == wanted and s,
            timeout,
            f"Secret {namespace}/{name} to hold {sorted(data)}",
            period=0.01,
        )


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("operator-sync")
    op = env.start_operator(kube, tmp, ("--default-sync-interval=30s",))
    device = None
    try:
        device = env.deploy_device(op, "sync", nodes.name(1))
        yield Stack(op, device)
    finally:
        env.remove_operator(op)
        if device is not None:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)
        print(op.log.read_text()[-3000:])


def test_write_creates_the_secret_with_data_and_type(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "db", secretType="kubernetes.io/basic-auth")
    started = time.monotonic()
    version = stack.write(f"{namespace}/db", {"username": b"app", "password": b"s3cret"})
    secret = stack.secret_holding(namespace, "db", {"username": b"app", "password": b"s3cret"}, 10)
    print(f"\nwrite -> Secret created: {time.monotonic() - started:.3f} s")
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["metadata"]["annotations"][constants.ANNOTATION_HSM_VERSION] == str(version)
    assert secret["metadata"]["labels"][constants.LABEL_MANAGED_BY] == constants.MANAGED_BY_VALUE
    assert secret["metadata"]["ownerReferences"][0]["name"] == "db"


def test_each_update_reaches_the_secret(stack: Stack, namespace: str) -> None:
    """How fast is bench/sync.py's to say (write → Secret updated, p50/p99): a test only waits, with a
    timeout, for every one of several updates in a row to arrive."""
    stack.hsmsecret(namespace, "app")
    for i in range(1, 6):
        stack.write(f"{namespace}/app", {"k": f"v{i}".encode()})
        stack.secret_holding(namespace, "app", {"k": f"v{i}".encode()}, 10)


def test_status_is_in_sync_with_the_hsm_version(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "versioned")
    version = stack.write(f"{namespace}/versioned", {"k": b"v"})
    status = testkit.poll(
        lambda: (s := stack.status(namespace, "versioned")).get("syncStatus") == "InSync" and s, 10, "InSync"
    )
    assert status["hsmVersion"] == version
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "SecretSynced")


def terminating(kube: testkit.Kube) -> list[str]:
    found = kube.client.request("GET", "/api/v1/namespaces")["items"]
    return [n["metadata"]["name"] for n in found if n.get("status", {}).get("phase") == "Terminating"]


def test_nothing_reads_the_token_while_nothing_changes(stack: Stack, namespace: str) -> None:
    """With every HSMSecret in sync, the agent makes no PKCS#11 call but its token probe: the operator's
    passes (here every 30 s per HSMSecret) are answered from the agent's index."""
    names = [f"quiet-{i}" for i in range(8)]
    for name in names:
        stack.write(f"{namespace}/{name}", {"k": name.encode()})
        stack.hsmsecret(namespace, name)
    for name in names:
        in_sync = functools.partial(lambda n: stack.status(namespace, n).get("syncStatus") == "InSync", name)
        testkit.poll(in_sync, 30, f"{name} InSync")
    # The namespaces of earlier tests go away meanwhile, and with them their Secrets, which their
    # HSMSecrets' passes would rightly try to restore: measure once they are gone.
    testkit.poll(lambda: not terminating(stack.kube), 120, "no namespace terminating")

    def window() -> tuple[dict[str, float], bool]:
        counts = functools.partial(env.agent_counts, stack.kube, stack.op.namespace, stack.device.name)
        calls, rescans = counts(), counts(metric="hsm_agent_rescans_total")
        time.sleep(10)
        after, rescans_after = counts(), counts(metric="hsm_agent_rescans_total")
        delta = {op: after.get(op, 0.0) - calls.get(op, 0.0) for op in after}
        return {op: n for op, n in delta.items() if n and op != "probe"}, rescans_after != rescans

    # The agent's periodic look for other tools' changes (every 5 minutes) makes a call of its own and
    # reads every object on every twelfth: a window it fell into is measured again.
    calls, rescanned = window()
    if rescanned:
        calls, rescanned = window()
    assert not rescanned
    assert calls == {}


def test_edited_secret_data_is_restored(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "drift")
    stack.write(f"{namespace}/drift", {"k": b"truth"})
    stack.secret_holding(namespace, "drift", {"k": b"truth"}, 10)
    stack.kube.client.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/secrets/drift",
        {"data": {"k": base64.b64encode(b"tampered").decode()}},
        content_type="application/merge-patch+json",
    )
    started = time.monotonic()
    stack.secret_holding(namespace, "drift", {"k": b"truth"}, 10)
    print(f"\nedited Secret restored in {time.monotonic() - started:.3f} s")


def test_deleted_secret_is_recreated(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "gone")
    stack.write(f"{namespace}/gone", {"k": b"v"})
    first = stack.secret_holding(namespace, "gone", {"k": b"v"}, 10)
    stack.kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/gone")
    recreated = testkit.poll(
        lambda: (
            (s := stack.secret(namespace, "gone")) and s["metadata"]["uid"] != first["metadata"]["uid"] and s
        ),
        10,
        "the Secret recreated",
    )
    assert base64.b64decode(recreated["data"]["k"]) == b"v"


def test_tombstone_with_delete_policy_deletes_the_secret(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "doomed", deletionPolicy="Delete")
    stack.write(f"{namespace}/doomed", {"k": b"v"})
    stack.secret_holding(namespace, "doomed", {"k": b"v"}, 10)
    stack.delete(f"{namespace}/doomed")
    testkit.poll(lambda: stack.secret(namespace, "doomed") is None, 10, "the Secret deleted")
    testkit.poll(
        lambda: stack.status(namespace, "doomed").get("syncStatus") == "Deleted", 10, "status Deleted"
    )


def test_tombstone_with_retain_policy_keeps_the_secret(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "kept", deletionPolicy="Retain")
    stack.write(f"{namespace}/kept", {"k": b"v"})
    stack.secret_holding(namespace, "kept", {"k": b"v"}, 10)
    stack.delete(f"{namespace}/kept")
    testkit.poll(lambda: stack.status(namespace, "kept").get("syncStatus") == "Deleted", 10, "status Deleted")
    secret = stack.secret(namespace, "kept")
    assert secret is not None
    assert base64.b64decode(secret["data"]["k"]) == b"v"


def _scale_agents(stack: Stack, replicas: int) -> None:
    selector = f"{constants.LABEL_COMPONENT}=agent,{constants.LABEL_DEVICE}={stack.device.name}"
    base = f"/apis/apps/v1/namespaces/{stack.op.namespace}/deployments"
    for deployment in stack.kube.client.get(f"{base}?labelSelector={selector}")["items"]:
        stack.kube.client.request(
            "PATCH",
            f"{base}/{deployment['metadata']['name']}/scale",
            {"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )


def test_stopped_agent_means_device_unavailable_and_the_secret_is_kept(stack: Stack, namespace: str) -> None:
    stack.hsmsecret(namespace, "steady")
    stack.write(f"{namespace}/steady", {"k": b"v"})
    stack.secret_holding(namespace, "steady", {"k": b"v"}, 10)
    _scale_agents(stack, 0)
    try:
        testkit.poll(
            lambda: env.ready_agent_pod(stack.kube, stack.op.namespace, stack.device.name) is None,
            30,
            "no agent",
        )
        ready = testkit.poll(
            lambda: next(
                (c for c in stack.status(namespace, "steady").get("conditions", [])
                 if c["type"] == "Ready" and c["reason"] == "DeviceUnavailable"),
                None,
            ),
            30,
            "reason DeviceUnavailable",
        )  # fmt: skip
        assert ready["status"] == "False"
        assert stack.secret(namespace, "steady") is not None
    finally:
        _scale_agents(stack, 1)
    pod = testkit.poll(
        lambda: env.ready_agent_pod(stack.kube, stack.op.namespace, stack.device.name), 60, "agent back"
    )
    stack.device.stub = env.agent_stub(stack.kube, stack.op.namespace, pod)
    testkit.poll(lambda: stack.status(namespace, "steady").get("syncStatus") == "InSync", 30, "InSync again")


def test_manager_restart_mid_sync_converges(stack: Stack, namespace: str) -> None:
    names = [f"r{i}" for i in range(20)]
    for name in names:
        stack.hsmsecret(namespace, name)
    for name in names:
        stack.write(f"{namespace}/{name}", {"k": b"first"})
    # Killed while the first round is being replicated; the second round lands while it is down.
    stack.op.stop(signal.SIGKILL)
    versions = {name: stack.write(f"{namespace}/{name}", {"k": b"second"}) for name in names}
    stack.op.start()
    started = time.monotonic()
    for name in names:
        secret = stack.secret_holding(namespace, name, {"k": b"second"}, 60)
        assert secret["metadata"]["annotations"][constants.ANNOTATION_HSM_VERSION] == str(versions[name])
    print(f"\nrestarted operator converged 20 HSMSecrets in {time.monotonic() - started:.3f} s")
    listed = stack.kube.client.get(
        f"/api/v1/namespaces/{namespace}/secrets?labelSelector={constants.LABEL_MANAGED_BY}={constants.MANAGED_BY_VALUE}"
    )
    assert sorted(s["metadata"]["name"] for s in listed["items"]) == sorted(names)


def test_hsmsecret_in_another_namespace_cannot_read_this_ones_path(stack: Stack, namespace: str) -> None:
    other = f"e2e-{uuid.uuid4().hex[:8]}"
    stack.kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": other}})
    try:
        stack.write(f"{namespace}/private", {"k": b"mine"})
        # Same hsmPath, other namespace: it reads other/private, which does not exist.
        stack.hsmsecret(other, "thief", hsmPath="private")
        testkit.poll(lambda: stack.status(other, "thief").get("syncStatus"), 15, "a status")
        assert stack.secret(other, "thief") is None
    finally:
        stack.kube.client.request("DELETE", f"/api/v1/namespaces/{other}")


def _agent_deployments(stack: Stack, device: str) -> list[str]:
    selector = f"{constants.LABEL_COMPONENT}=agent,{constants.LABEL_DEVICE}={device}"
    found = stack.kube.client.get(
        f"/apis/apps/v1/namespaces/{stack.op.namespace}/deployments?labelSelector={selector}"
    )
    return [d["metadata"]["name"] for d in found["items"]]


def test_deleting_a_device_removes_its_agent_and_leaves_the_others(stack: Stack) -> None:
    other = env.deploy_device(stack.op, "other", nodes.name(2))
    try:
        assert _agent_deployments(stack, "other")
        stack.kube.client.request("DELETE", f"{GP}/namespaces/{stack.op.namespace}/hsmdevices/other")
        testkit.poll(lambda: not _agent_deployments(stack, "other"), 60, "the other device's agent collected")
        testkit.poll(
            lambda: env.ready_agent_pod(stack.kube, stack.op.namespace, "other") is None, 60, "its pod gone"
        )
        assert _agent_deployments(stack, stack.device.name)
        assert env.ready_agent_pod(stack.kube, stack.op.namespace, stack.device.name) is not None
    finally:
        other.heartbeat.stop()
        env.delete_token(other.conf, other.label)
