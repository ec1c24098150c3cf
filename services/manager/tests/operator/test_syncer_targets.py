"""Sync passes of HSMSecrets with spec.target and spec.data, against in-memory agents and API server."""

from __future__ import annotations

import base64
import json
from typing import Any

from hsm_common import constants
from hsm_manager.decide import sync
from hsm_manager.operator import runtime

from .. import fakes
from . import stored
from .conftest import APP_NS, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"
CREDENTIALS = {"username": b"alice", "password": b"s3cr:t/pw", "host": b"db.internal"}
URL = "postgres://{{ values.user }}:{{ values.password | urlencode }}@{{ values.host }}/app"
SELECTION = [
    {"secretKey": "user", "key": "username"},
    {"secretKey": "password", "key": "password"},
    {"secretKey": "host", "key": "host"},
]


def ready_reason(cluster: fakes.FakeKube) -> str:
    return str(next(c["reason"] for c in stored.status(cluster)["conditions"] if c["type"] == "Ready"))


def templated(url: str = URL, **target: Any) -> dict[str, Any]:
    return hsmsecret(data=SELECTION, target={"template": {"data": {"DATABASE_URL": url}}, **target})


def write(directory: fakes.FakeDirectory, values: dict[str, bytes]) -> None:
    directory.clients["hsm-a"].write(PATH, values, None)


def test_a_template_renders_a_database_url_from_the_selected_keys(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated(labels={"team": "payments"}, annotations={"owner": "db-team"}))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"DATABASE_URL": b"postgres://alice:s3cr%3At%2Fpw@db.internal/app"}
    meta = stored.secret(cluster)["metadata"]
    assert meta["labels"]["team"] == "payments"
    assert meta["labels"][constants.LABEL_MANAGED_BY] == constants.MANAGED_BY_VALUE
    assert meta["annotations"]["owner"] == "db-team"
    assert stored.status(cluster)["syncStatus"] == "InSync"


def test_a_templated_secret_in_sync_costs_no_read_and_no_write(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    before, reads = list(cluster.calls), directory.clients["hsm-a"].calls.count("read")
    assert rt.syncer.run(KEY, verify=True) == "unchanged"
    assert cluster.calls == before
    assert directory.clients["hsm-a"].calls.count("read") == reads


def test_a_hand_edit_of_a_templated_secret_is_undone(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    edited = stored.secret(cluster)
    edited["data"]["DATABASE_URL"] = base64.b64encode(b"postgres://mallory@evil/app").decode()
    cluster.add(edited)
    assert not rt.syncer.intact(KEY, stored.secret(cluster))
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert stored.data(cluster)["DATABASE_URL"].startswith(b"postgres://alice:")


def test_a_new_hsm_version_renders_again(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    write(directory, {**CREDENTIALS, "password": b"rotated"})
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster)["DATABASE_URL"] == b"postgres://alice:rotated@db.internal/app"


def test_a_broken_template_is_an_error_that_keeps_the_secret_and_warns(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    kept = stored.secret(cluster)
    cluster.add(templated("{{ values.pasword }}"))
    assert rt.syncer.run(KEY) == "error"
    assert stored.secret(cluster) == kept
    assert stored.status(cluster)["syncStatus"] == "Error"
    assert ready_reason(cluster) == sync.Reason.TEMPLATE_FAILED
    message = stored.status(cluster)["lastError"]
    assert message == "template DATABASE_URL: line 1: undefined name 'pasword'; the Secret is kept as it was"
    warnings = [e for e in cluster.events if e.warning and e.reason == "SyncFailed"]
    assert warnings
    assert all("s3cr" not in e.message and "alice" not in e.message for e in cluster.events)


def test_a_fixed_template_recovers(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated("{{ values.pasword }}"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    cluster.add(templated())
    assert rt.syncer.run(KEY) == "written"
    assert stored.status(cluster)["syncStatus"] == "InSync"
    assert "lastError" not in stored.status(cluster)


def test_a_selected_key_missing_on_the_hsm_is_an_error_naming_the_key(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(data=[{"secretKey": "token", "key": "apiToken"}]))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    assert ready_reason(cluster) == sync.Reason.KEY_NOT_FOUND
    assert (
        stored.status(cluster)["lastError"] == "spec.data names apiToken, which the HSM secret does not hold"
    )
    assert cluster.stored("Secret", APP_NS, "db") is None


def test_a_selection_writes_only_the_listed_keys_renamed(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(data=[{"secretKey": "DB_USER", "key": "username"}]))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    assert stored.data(cluster) == {"DB_USER": b"alice"}


def test_a_docker_config_secret_is_written_with_its_type(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    config = "{{ values.registry | dockerconfigjson(values.username, values.password) }}"
    cluster.add(
        hsmsecret(
            target={
                "type": "kubernetes.io/dockerconfigjson",
                "template": {"data": {".dockerconfigjson": config}},
            }
        )
    )
    write(directory, {**CREDENTIALS, "registry": b"ghcr.io"})
    rt.syncer.run(KEY)
    assert stored.secret(cluster)["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(stored.data(cluster)[".dockerconfigjson"])["auths"]
    assert auths["ghcr.io"]["username"] == "alice"


def test_the_operators_own_labels_in_the_spec_are_an_invalid_spec(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(target={"labels": {constants.LABEL_SECRET: "other"}}))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "invalid"
    assert ready_reason(cluster) == sync.Reason.INVALID
    assert stored.status(cluster)["lastError"] == (
        "spec.target.labels: labels hsm.j5t.io/hsmsecret: the operator writes these itself"
    )


def test_new_data_for_an_immutable_secret_recreates_it_and_says_so(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(target={"immutable": True}))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    first = stored.secret(cluster)
    assert first["immutable"] is True
    write(directory, {**CREDENTIALS, "password": b"rotated"})
    assert rt.syncer.run(KEY) == "written"
    second = stored.secret(cluster)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert stored.data(cluster)["password"] == b"rotated"
    assert "SecretRecreated" in cluster.reasons()
    assert (
        "deleted and created again: it is immutable and its data changes"
        in stored.status(cluster)["conditions"][0]["message"]
    )


def test_new_labels_on_an_immutable_secret_are_a_replace(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(target={"immutable": True}))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    uid = stored.secret(cluster)["metadata"]["uid"]
    cluster.add(hsmsecret(target={"immutable": True, "labels": {"team": "a"}}))
    assert rt.syncer.run(KEY) == "written"
    assert stored.secret(cluster)["metadata"]["uid"] == uid
    assert stored.secret(cluster)["metadata"]["labels"]["team"] == "a"


def test_a_type_changed_through_the_target_recreates_the_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    write(directory, {"tls.crt": b"c", "tls.key": b"k"})
    rt.syncer.run(KEY)
    cluster.add(hsmsecret(target={"type": "kubernetes.io/tls"}))
    assert rt.syncer.run(KEY) == "written"
    assert stored.secret(cluster)["type"] == "kubernetes.io/tls"
    assert "SecretRecreated" in cluster.reasons()


def test_a_plain_hsmsecret_writes_the_secret_exactly_as_before(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    secret = stored.secret(cluster)
    assert "immutable" not in secret
    assert set(secret["metadata"]["labels"]) == {constants.LABEL_MANAGED_BY, constants.LABEL_SECRET}
    assert set(secret["metadata"]["annotations"]) == {
        constants.ANNOTATION_HSM_VERSION,
        constants.ANNOTATION_DATA_MAC,
    }


def test_dropping_a_target_label_from_the_spec_removes_it_from_the_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(target={"labels": {"team": "a"}}))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    cluster.add(hsmsecret())
    assert rt.syncer.run(KEY) == "written"
    assert "team" not in stored.secret(cluster)["metadata"]["labels"]
    assert constants.ANNOTATION_SHAPE_MAC not in stored.secret(cluster)["metadata"]["annotations"]


def test_a_first_template_failure_is_one_warning_event(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(templated("{{ values.pasword }}"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    assert cluster.reasons() == ["SyncFailed"]
