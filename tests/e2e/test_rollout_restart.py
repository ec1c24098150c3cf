"""rolloutRestartTargets end to end: a Deployment reading the Secret restarts when the HSM's value changes.

The operator runs as its ServiceAccount with the opt-in rollout-restart RBAC (deploy/kustomize/components),
and the agent is the image on node-1 serving a SoftHSM2 token (the set-up of test_secret_templates). A
Deployment takes its environment from the Secret: a new value on the HSM restarts it (a new ReplicaSet and
pod), new labels on the Secret do not; a target that does not exist is a Warning while the Secret syncs. The
consumer scenario of issue #21: a DATABASE_URL templated from two keys of one path and a key of a second
restarts its Deployment exactly once for a new version of either path, never for the Secret's creation or
new labels.
"""

import pathlib
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import images, nodes, testkit

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import hsmsecret_stack as stacks
import operator_env as env

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
URL = "postgres://{{ values.username }}:{{ values.password | urlencode }}@{{ values.host }}:5432/app"


def deployment_obj(stack: stacks.Stack, namespace: str, name: str) -> dict[str, Any]:
    found = env.get(stack.kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    assert found is not None
    return found


def replica_sets(stack: stacks.Stack, namespace: str, app: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.kube.client.request(
        "GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets?labelSelector=app%3D{app}"
    )["items"]
    return found


def ready_pod(stack: stacks.Stack, namespace: str, app: str, template_hash: str) -> dict[str, Any] | None:
    """A Ready pod of app made from the pod template with this hash."""
    found = stack.kube.client.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=app%3D{app}")
    pods: list[dict[str, Any]] = found["items"]
    for pod in pods:
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        if ready and pod["metadata"]["labels"].get("pod-template-hash") == template_hash:
            return dict(pod)
    return None


def rollout_state(stack: stacks.Stack, namespace: str, name: str) -> tuple[int, str | None]:
    """The Deployment's generation (one more for each change of its spec) and its restart annotation."""
    found = deployment_obj(stack, namespace, name)
    annotations = found["spec"]["template"]["metadata"].get("annotations") or {}
    return int(found["metadata"]["generation"]), annotations.get(RESTARTED_AT)


def relabelled(stack: stacks.Stack, namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """Give the HSMSecret's Secret labels; the HSMSecret's status once the Secret has them and a pass has
    seen the new spec."""
    stack.patch(namespace, name, {"target": {"labels": labels}})

    def check() -> bool:
        found = stack.secret(namespace, name)
        return found is not None and labels.items() <= found["metadata"].get("labels", {}).items()

    testkit.poll(check, 30, f"the labels {labels} on the Secret")
    return stack.settled(namespace, name)


def events_with(stack: stacks.Stack, namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in stack.events(namespace, name) if e["reason"] == reason]


def deployment(namespace: str, name: str, **container: Any) -> dict[str, Any]:
    """One pod that blocks, its container completed by container: how it takes its environment from the
    Secret (so it reads the Secret only at start)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeName": nodes.name(1),
                    "containers": [
                        {
                            "name": "app",
                            "image": images.PAUSE_IMAGE,
                            "imagePullPolicy": "Never",
                            **container,
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stacks.Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("rollout-restart")
    args, rbac = ("--default-sync-interval=30s",), (env.ROLLOUT_RESTART_RBAC,)
    with stacks.running_stack(kube, tmp, "rollout", args, rbac) as running:
        yield running


def test_a_new_value_restarts_the_deployment_and_new_labels_do_not(
    stack: stacks.Stack, namespace: str
) -> None:
    stack.write(f"{namespace}/db", {"password": b"one"})
    stack.hsmsecret(namespace, "db", rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    stack.secret_holding(namespace, "db", {"password": b"one"})
    stack.settled(namespace, "db")
    stack.kube.client.request(
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        deployment(namespace, "web", envFrom=[{"secretRef": {"name": "db"}}]),
    )
    [first] = testkit.poll(lambda: replica_sets(stack, namespace, "web"), 60, "the first ReplicaSet")
    first_hash = first["metadata"]["labels"]["pod-template-hash"]
    testkit.poll(lambda: ready_pod(stack, namespace, "web", first_hash), 60, "the first pod Ready")
    # The first creation of the Secret restarted nothing.
    assert RESTARTED_AT not in (
        deployment_obj(stack, namespace, "web")["spec"]["template"]["metadata"].get("annotations") or {}
    )

    # New labels rewrite the Secret, not its data: no restart.
    status = relabelled(stack, namespace, "db", {"team": "payments"})
    assert "lastRolloutRestart" not in status
    template = deployment_obj(stack, namespace, "web")["spec"]["template"]
    assert RESTARTED_AT not in (template["metadata"].get("annotations") or {})
    assert len(replica_sets(stack, namespace, "web")) == 1
    assert events_with(stack, namespace, "db", "RolloutRestarted") == []

    # A new value on the HSM: the Secret holds it and the Deployment rolls a new pod that reads it.
    stack.write(f"{namespace}/db", {"password": b"two"})
    stack.secret_holding(namespace, "db", {"password": b"two"})
    annotations = testkit.poll(
        lambda: (
            deployment_obj(stack, namespace, "web")["spec"]["template"]["metadata"].get("annotations") or {}
        ).get(RESTARTED_AT),
        30,
        "the restart annotation on the pod template",
    )
    second = testkit.poll(
        lambda: [
            r
            for r in replica_sets(stack, namespace, "web")
            if r["metadata"]["uid"] != first["metadata"]["uid"]
        ],
        60,
        "a new ReplicaSet",
    )[0]
    assert second["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] == annotations
    second_hash = second["metadata"]["labels"]["pod-template-hash"]
    testkit.poll(lambda: ready_pod(stack, namespace, "web", second_hash), 60, "the new pod Ready")
    [event] = testkit.poll(
        lambda: events_with(stack, namespace, "db", "RolloutRestarted"), 30, "RolloutRestarted"
    )
    assert (event["type"], event["message"]) == (
        "Normal",
        "restarted deployment/web: the Secret's data changed",
    )
    status = stack.settled(namespace, "db")
    assert "lastRolloutRestart" in status
    restarted = next(c for c in status["conditions"] if c["type"] == "RolloutRestarted")
    assert (restarted["status"], restarted["message"]) == ("True", "restarted deployment/web")
    line = f'hsm_manager_rollout_restarts_total{{kind="Deployment",namespace="{namespace}"}} 1.0'
    assert re.search(re.escape(line), stack.op.metrics_text())


def test_a_missing_target_is_a_warning_and_the_secret_still_syncs(
    stack: stacks.Stack, namespace: str
) -> None:
    stack.write(f"{namespace}/api", {"token": b"one"})
    stack.hsmsecret(namespace, "api", rolloutRestartTargets=[{"kind": "Deployment", "name": "absent"}])
    stack.secret_holding(namespace, "api", {"token": b"one"})
    stack.settled(namespace, "api")

    stack.write(f"{namespace}/api", {"token": b"two"})
    stack.secret_holding(namespace, "api", {"token": b"two"})
    [warning] = testkit.poll(
        lambda: events_with(stack, namespace, "api", "RolloutRestartFailed"),
        30,
        "the RolloutRestartFailed event",
    )
    assert warning["type"] == "Warning"
    assert warning["message"] == "deployment/absent was not restarted: it does not exist in this namespace"
    # The event comes before the pass patches the status: wait for the condition, not just for InSync.
    status = testkit.poll(
        lambda: (
            (s := stack.settled(namespace, "api"))
            and any(c["type"] == "RolloutRestarted" for c in s["conditions"])
            and s
        ),
        30,
        "the RolloutRestarted condition",
    )
    restarted = next(c for c in status["conditions"] if c["type"] == "RolloutRestarted")
    assert (restarted["status"], restarted["reason"]) == ("False", "TargetNotFound")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_a_templated_database_url_restarts_its_deployment_once_per_changed_path_and_not_for_labels(
    stack: stacks.Stack, namespace: str
) -> None:
    credentials, endpoint = f"{namespace}/credentials", f"{namespace}/endpoint"
    first = stack.write(credentials, {"username": b"app", "password": b"s3cr:t/1"})
    second = stack.write(endpoint, {"host": b"db1.internal"})
    # The Deployment exists before its Secret, so the Secret's creation is a data change it could restart.
    env_var = {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "DATABASE_URL"}}}
    stack.kube.client.request(
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        deployment(namespace, "api", env=[env_var]),
    )
    stack.hsmsecret(
        namespace,
        "db",
        hsmPath="credentials",
        dataFrom=[{"hsmPath": "endpoint"}],
        target={"template": {"data": {"DATABASE_URL": URL}}},
        rolloutRestartTargets=[{"kind": "Deployment", "name": "api"}],
        # Both changes come within seconds: no interval, so neither waits for the other.
        minRestartInterval=0,
    )
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F1@db1.internal:5432/app"}
    )
    # A pass restarts its targets before it patches the status: once the status shows the versions, the
    # Deployment and the events show everything that pass did.
    status = stack.sources_at(namespace, "db", {credentials: first, endpoint: second})
    assert "lastRolloutRestart" not in status
    assert rollout_state(stack, namespace, "api") == (1, None)
    assert events_with(stack, namespace, "db", "RolloutRestarted") == []

    # A new password: one restart.
    first = stack.write(credentials, {"username": b"app", "password": b"s3cr:t/2"})
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F2@db1.internal:5432/app"}
    )
    stack.sources_at(namespace, "db", {credentials: first, endpoint: second})
    generation, once = rollout_state(stack, namespace, "api")
    assert generation == 2
    assert once is not None
    assert len(events_with(stack, namespace, "db", "RolloutRestarted")) == 1

    # A new host on the second path: one more restart.
    second = stack.write(endpoint, {"host": b"db2.internal"})
    stack.secret_holding(
        namespace, "db", {"DATABASE_URL": b"postgres://app:s3cr%3At%2F2@db2.internal:5432/app"}
    )
    stack.sources_at(namespace, "db", {credentials: first, endpoint: second})
    generation, twice = rollout_state(stack, namespace, "api")
    assert generation == 3
    assert twice not in (None, once)
    restarted = events_with(stack, namespace, "db", "RolloutRestarted")
    assert [e["message"] for e in restarted] == ["restarted deployment/api: the Secret's data changed"] * 2
    # The pod of the newest template starts: the Secret holds the key its environment names.
    [newest] = testkit.poll(
        lambda: [
            r
            for r in replica_sets(stack, namespace, "api")
            if (r["spec"]["template"]["metadata"].get("annotations") or {}).get(RESTARTED_AT) == twice
        ],
        60,
        "the ReplicaSet of the newest template",
    )
    newest_hash = newest["metadata"]["labels"]["pod-template-hash"]
    testkit.poll(lambda: ready_pod(stack, namespace, "api", newest_hash), 60, "the newest pod Ready")

    # New labels only: the Secret is relabelled, the Deployment left alone.
    status = relabelled(stack, namespace, "db", {"team": "payments"})
    assert "rolloutRestartPending" not in status
    assert rollout_state(stack, namespace, "api") == (3, twice)
    assert len(events_with(stack, namespace, "db", "RolloutRestarted")) == 2
