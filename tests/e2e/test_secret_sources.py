"""dataFrom end to end: one Secret merged from two HSM paths of a real agent pod's token.

The operator runs as its ServiceAccount, the agent is the image on node-1 serving a SoftHSM2 token (the set-up
of test_secret_templates). A templated DATABASE_URL takes two keys of one path and a key of a second; a new
version of either path is written into the Secret, the status lists each path's version and the key both
paths hold; a source path that does not exist is an Error naming it, with the Secret kept.
"""

import pathlib
import sys
from collections.abc import Iterator

import pytest

from devcluster import testkit

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import hsmsecret_stack as stacks

URL = "postgres://{{ values.username }}:{{ values.password | urlencode }}@{{ values.host }}:5432/app"


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stacks.Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("secret-sources")
    with stacks.running_stack(kube, tmp, "sources", ("--default-sync-interval=300s",)) as running:
        yield running


def test_a_database_url_from_two_paths_follows_either_path(stack: stacks.Stack, namespace: str) -> None:
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
    stack: stacks.Stack, namespace: str
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
