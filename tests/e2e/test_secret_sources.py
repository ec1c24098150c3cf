"""dataFrom end to end: one Secret merged from two HSM paths of a real agent pod's token.

The operator runs as its ServiceAccount, the agent is the image on node-1 serving a SoftHSM2 token (the set-up
of test_secret_templates). A templated DATABASE_URL takes two keys of one path and a key of a second; a new
version of either path is written into the Secret, the status lists each path's version and the key both
paths hold; a source path that does not exist is an Error naming it, with the Secret kept.
"""

import base64
import pathlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devcluster import nodes, testkit
from hsmproto.v1 import hsm_pb2

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

GP = env.GROUP_PATH
URL = "postgres://{{ values.username }}:{{ values.password | urlencode }}@{{ values.host }}:5432/app"


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

    def hsmsecret(self, namespace: str, name: str, **spec: Any) -> None:
        spec.setdefault("device", self.device.name)
        self.kube.client.request(
            "POST", f"{GP}/namespaces/{namespace}/hsmsecrets", env.hsmsecret_manifest(namespace, name, **spec)
        )

    def patch(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.kube.client.request(
            "PATCH",
            f"{GP}/namespaces/{namespace}/hsmsecrets/{name}",
            {"spec": spec},
            "application/merge-patch+json",
        )

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return env.get(self.kube, f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = env.get(self.kube, f"{GP}/namespaces/{namespace}/hsmsecrets/{name}") or {}
        return obj.get("status") or {}

    def secret_holding(self, namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
        wanted = {k: base64.b64encode(v).decode() for k, v in data.items()}

        def check() -> dict[str, Any] | None:
            found = self.secret(namespace, name)
            return found if found is not None and found.get("data") == wanted else None

        holding = testkit.poll(check, 30, f"Secret {namespace}/{name} to hold {sorted(data)}")
        assert holding is not None
        return holding

    def status_when(
        self, namespace: str, name: str, ok: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(namespace, name)
            return status if ok(status) else None

        found = testkit.poll(check, 30, f"HSMSecret {namespace}/{name} {what}")
        assert found is not None
        return found

    def sources_at(self, namespace: str, name: str, versions: dict[str, int]) -> dict[str, Any]:
        wanted = [{"path": path, "version": version} for path, version in versions.items()]
        return self.status_when(
            namespace,
            name,
            lambda s: s.get("syncStatus") == "InSync" and s.get("sources") == wanted,
            f"InSync at {wanted}",
        )


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("secret-sources")
    op = env.start_operator(kube, tmp, ("--default-sync-interval=300s",))
    device = None
    try:
        device = env.deploy_device(op, "sources", nodes.name(1))
        yield Stack(op, device)
    finally:
        env.remove_operator(op)
        if device is not None:
            device.heartbeat.stop()
            env.delete_token(device.conf, device.label)
        print(op.log.read_text()[-3000:])


def test_a_database_url_from_two_paths_follows_either_path(stack: Stack, namespace: str) -> None:
    credentials, endpoint = f"{namespace}/credentials", f"{namespace}/endpoint"
    first = stack.write(credentials, {"username": b"app", "password": b"s3cr:t/1", "host": b"stale"})
    second = stack.write(endpoint, {"host": b"db1.internal"})
    stack.hsmsecret(
        namespace,
        "db",
        dataFrom=[{"hsmPath": "credentials"}, {"hsmPath": "endpoint"}],
        target={"template": {"data": {"DATABASE_URL": URL}}},
    )
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F1@db1.internal:5432/app"}
    )
    status = stack.sources_at(namespace, "db", {credentials: first, endpoint: second})
    assert status["keyConflicts"] == [{"key": "host", "source": endpoint}]

    # The sync interval is longer than the test: only the agent's change events can bring these in.
    second = stack.write(endpoint, {"host": b"db2.internal"})
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F1@db2.internal:5432/app"}
    )
    stack.sources_at(namespace, "db", {credentials: first, endpoint: second})

    first = stack.write(credentials, {"username": b"app", "password": b"s3cr:t/2"})
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F2@db2.internal:5432/app"}
    )
    status = stack.sources_at(namespace, "db", {credentials: first, endpoint: second})
    assert "keyConflicts" not in status


def test_a_missing_source_path_is_an_error_naming_it_and_keeps_the_secret(
    stack: Stack, namespace: str
) -> None:
    stack.write(f"{namespace}/base", {"user": b"app"})
    stack.hsmsecret(namespace, "app", dataFrom=[{"hsmPath": "base"}])
    kept = stack.secret_holding(namespace, "app", {"user": b"app"})
    stack.patch(namespace, "app", {"dataFrom": [{"hsmPath": "base"}, {"hsmPath": "absent"}]})
    status = stack.status_when(namespace, "app", lambda s: s.get("syncStatus") == "Error", "Error")
    assert f"source path {namespace}/absent does not exist" in status["lastError"]
    now = stack.secret(namespace, "app")
    assert now is not None
    assert now["metadata"]["resourceVersion"] == kept["metadata"]["resourceVersion"]
