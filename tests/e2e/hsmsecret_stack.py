"""An operator with one device on the devcluster, driven the way the HSMSecret tests drive it.

``running_stack`` starts the operator (operator_env.start_operator) and an agent pod serving a SoftHSM2 token
on node-1, and removes both afterwards; ``Stack`` writes HSM paths through that agent and creates, patches,
reads and waits for HSMSecrets and the Secrets they make.
"""

import base64
import contextlib
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import operator_env as env

from devcluster import testkit
from hsmproto.v1 import hsm_pb2


class Stack:
    """An operator with one device: HSM paths written through its agent, HSMSecrets, the Secrets they make."""

    def __init__(self, op: env.Operator, device: env.Device) -> None:
        self.op, self.device = op, device

    @property
    def kube(self) -> testkit.Kube:
        return self.op.kube

    def write(self, path: str, data: dict[str, bytes]) -> int:
        """A new version of path on the device's token; returns its version."""
        answer = self.device.stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)), timeout=10
        )
        return int(answer.version)

    def hsmsecret(self, namespace: str, name: str, **spec: Any) -> None:
        """Create an HSMSecret of spec, on this stack's device unless spec names one."""
        spec.setdefault("device", self.device.name)
        self.kube.client.request(
            "POST",
            f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets",
            env.hsmsecret_manifest(namespace, name, **spec),
        )

    def patch(self, namespace: str, name: str, spec: dict[str, Any]) -> int:
        """Merge spec into the HSMSecret's spec; returns its new generation."""
        answer = self.kube.client.request(
            "PATCH",
            f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets/{name}",
            {"spec": spec},
            "application/merge-patch+json",
        )
        return int(answer["metadata"]["generation"])

    def delete(self, namespace: str, name: str) -> None:
        """Delete the HSMSecret and wait (up to 30 s) until it is gone, finalizers done."""
        self.kube.client.request("DELETE", f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets/{name}")
        testkit.poll(
            lambda: not self.hsmsecret_obj(namespace, name), 30, f"HSMSecret {namespace}/{name} to be gone"
        )

    def hsmsecret_obj(self, namespace: str, name: str) -> dict[str, Any]:
        """The HSMSecret, {} while there is none."""
        return env.get(self.kube, f"{env.GROUP_PATH}/namespaces/{namespace}/hsmsecrets/{name}") or {}

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.hsmsecret_obj(namespace, name).get("status") or {}
        return status

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return env.get(self.kube, f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The events about the objects named name in namespace (an HSMSecret and its Secret's name)."""
        found: list[dict[str, Any]] = self.kube.client.request(
            "GET", f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3D{name}"
        )["items"]
        return found

    def secret_holding(self, namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
        """The Secret once it holds exactly data (waits up to 30 s)."""
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
        """The HSMSecret's status once ok holds for it (waits up to 30 s)."""

        def check() -> dict[str, Any] | None:
            status = self.status(namespace, name)
            return status if ok(status) else None

        found = testkit.poll(check, 30, f"HSMSecret {namespace}/{name} {what}")
        assert found is not None
        return found

    def sources_at(self, namespace: str, name: str, versions: dict[str, int]) -> dict[str, Any]:
        """The HSMSecret's status once it is InSync with these versions of its source paths (in order)."""
        wanted = [{"path": path, "version": version} for path, version in versions.items()]
        return self.status_when(
            namespace,
            name,
            lambda s: s.get("syncStatus") == "InSync" and s.get("sources") == wanted,
            f"InSync at {wanted}",
        )

    def settled(self, namespace: str, name: str) -> dict[str, Any]:
        """The HSMSecret's status once a pass has seen its current spec and left it InSync."""

        def check() -> dict[str, Any] | None:
            obj = self.hsmsecret_obj(namespace, name)
            status: dict[str, Any] = obj.get("status") or {}
            seen = status.get("observedGeneration") == obj["metadata"]["generation"]
            return status if seen and status.get("syncStatus") == "InSync" else None

        settled = testkit.poll(check, 30, f"HSMSecret {namespace}/{name} InSync at its generation")
        assert settled is not None
        return settled


@contextlib.contextmanager
def running_stack(
    kube: testkit.Kube,
    tmp: pathlib.Path,
    device: str,
    extra_args: tuple[str, ...] = (),
    extra_rbac: tuple[pathlib.Path, ...] = (),
) -> Iterator[Stack]:
    """An operator (env.start_operator's extra_args and extra_rbac) with a device named device on node-1, both
    removed afterwards; the tail of the operator's log is printed last, for the test report."""
    op = env.start_operator(kube, tmp, extra_args, extra_rbac=extra_rbac)
    deployed = None
    try:
        deployed = env.deploy_device(op, device)
        yield Stack(op, deployed)
    finally:
        env.remove_operator(op)
        if deployed is not None:
            deployed.heartbeat.stop()
            env.delete_token(deployed.conf, deployed.label)
        print(op.log.read_text()[-3000:])
