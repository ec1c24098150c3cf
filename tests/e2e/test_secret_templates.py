"""HSMSecret targets end to end: selected keys and a templated DATABASE_URL from a real agent pod's token.

The operator runs as its ServiceAccount, the agent is the image on node-1 serving a SoftHSM2 token (the set-up
of test_operator_sync). One HSMSecret picks and renames two keys, adds a DATABASE_URL built from them and a
label; a broken template then turns it to Error with the Secret left as it was, and the fix brings it back
with the HSM's newest values. An immutable docker config Secret shows what the real API server allows: new
labels in place, new data only by deleting and creating the Secret.
"""

import base64
import json
import pathlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devcluster import testkit
from hsm_common import constants

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import hsmsecret_stack as stacks

URL = "postgres://{{ values.DB_USER }}:{{ values.DB_PASSWORD | urlencode }}@db.internal:5432/app"
BROKEN = "postgres://{{ values.DB_USER }}:{{ values.DB_PASWORD }}@db.internal:5432/app"
SELECTION = [{"secretKey": "DB_USER", "key": "username"}, {"secretKey": "DB_PASSWORD", "key": "password"}]


def template(stack: stacks.Stack, namespace: str, name: str, url: str) -> None:
    stack.patch(namespace, name, {"target": {"template": {"data": {"DATABASE_URL": url}}}})


def warning_events(stack: stacks.Stack, namespace: str, name: str) -> list[dict[str, Any]]:
    return [e for e in stack.events(namespace, name) if e.get("type") == "Warning"]


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stacks.Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("secret-templates")
    with stacks.running_stack(kube, tmp, "templates", ("--default-sync-interval=30s",)) as running:
        yield running


def test_a_template_error_keeps_the_secret_until_the_template_is_fixed(
    stack: stacks.Stack, namespace: str
) -> None:
    path = f"{namespace}/db"
    stack.write(path, {"username": b"app", "password": b"s3cr:t/1", "unused": b"not selected"})
    stack.hsmsecret(
        namespace,
        "db",
        data=SELECTION,
        target={
            "labels": {"team": "payments"},
            "template": {"data": {"DATABASE_URL": URL}, "mergePolicy": "Merge"},
        },
    )
    first = {
        "DB_USER": b"app",
        "DB_PASSWORD": b"s3cr:t/1",
        "DATABASE_URL": b"postgres://app:s3cr%3At%2F1@db.internal:5432/app",
    }
    secret = stack.secret_holding(namespace, "db", first)
    assert secret["metadata"]["labels"]["team"] == "payments"
    assert secret["metadata"]["labels"][constants.LABEL_MANAGED_BY] == constants.MANAGED_BY_VALUE
    assert constants.ANNOTATION_SHAPE_MAC in secret["metadata"]["annotations"]
    testkit.poll(lambda: stack.status(namespace, "db").get("syncStatus") == "InSync", 30, "InSync")

    template(stack, namespace, "db", BROKEN)
    version = stack.write(path, {"username": b"app", "password": b"s3cr:t/2", "unused": b"not selected"})
    status = testkit.poll(
        lambda: (
            (s := stack.status(namespace, "db")).get("syncStatus") == "Error"
            and s.get("hsmVersion") == version
            and s
        ),
        30,
        "Error at the new HSM version",
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TemplateFailed")
    assert status["lastError"] == (
        "template DATABASE_URL: line 1: undefined name 'DB_PASWORD'; the Secret is kept as it was"
    )
    warnings = testkit.poll(
        lambda: warning_events(stack, namespace, "db"), 30, "a Warning event on the HSMSecret"
    )
    assert any("DB_PASWORD" in e["message"] for e in warnings)
    assert all("s3cr" not in e["message"] for e in warnings)
    kept = stack.secret(namespace, "db")
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]

    template(stack, namespace, "db", URL)
    second = {
        "DB_USER": b"app",
        "DB_PASSWORD": b"s3cr:t/2",
        "DATABASE_URL": b"postgres://app:s3cr%3At%2F2@db.internal:5432/app",
    }
    stack.secret_holding(namespace, "db", second)
    status = testkit.poll(
        lambda: (s := stack.status(namespace, "db")).get("syncStatus") == "InSync" and s, 30, "InSync again"
    )
    assert "lastError" not in status
    assert status["hsmVersion"] == version


def test_an_immutable_docker_config_is_recreated_for_new_data_and_relabelled_in_place(
    stack: stacks.Stack, namespace: str
) -> None:
    path = f"{namespace}/pull"
    stack.write(path, {"registry": b"ghcr.io", "username": b"bot", "password": b"token-1"})
    config = "{{ values.registry | dockerconfigjson(values.username, values.password) }}"
    target = {
        "type": "kubernetes.io/dockerconfigjson",
        "immutable": True,
        "template": {"data": {".dockerconfigjson": config}},
    }
    stack.hsmsecret(namespace, "pull", target=target)

    def holding(password: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            secret = stack.secret(namespace, "pull")
            if secret is None or ".dockerconfigjson" not in secret.get("data", {}):
                return None
            auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
            return secret if auths["ghcr.io"]["password"] == password else None

        return check

    first = testkit.poll(holding("token-1"), 30, "the docker config with token-1")
    assert (first["type"], first.get("immutable")) == ("kubernetes.io/dockerconfigjson", True)

    # Labels of an immutable Secret change in place: the same Secret, relabelled.
    stack.patch(namespace, "pull", {"target": {"labels": {"team": "builds"}}})
    relabelled = testkit.poll(
        lambda: (s := stack.secret(namespace, "pull")) and s["metadata"].get("labels", {}).get("team") and s,
        30,
        "the label on the Secret",
    )
    assert relabelled["metadata"]["uid"] == first["metadata"]["uid"]

    # New data cannot go into an immutable Secret: it is deleted and created again, and said so.
    stack.write(path, {"registry": b"ghcr.io", "username": b"bot", "password": b"token-2"})
    second = testkit.poll(holding("token-2"), 30, "the docker config with token-2")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert second["metadata"]["labels"]["team"] == "builds"

    def recreated_events() -> list[dict[str, Any]]:
        return [e for e in stack.events(namespace, "pull") if e["reason"] == "SecretRecreated"]

    # The event is posted after the Secret is written: wait for it rather than read once.
    recreated = testkit.poll(recreated_events, 30, "the SecretRecreated event")
    assert "it is immutable and its data changes" in recreated[0]["message"]
    testkit.poll(lambda: stack.status(namespace, "pull").get("syncStatus") == "InSync", 30, "InSync")
