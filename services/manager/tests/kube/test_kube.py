"""hsm_manager.kube: the one loading rule, the reviews and PIN writes the API asks of Kubernetes, and the
sync's writes, lists and watches."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest
from kubernetes.config import incluster_config, kube_config

from hsm_common import constants
from hsm_manager import kube

from .conftest import ApiServer, write_kubeconfig

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def host_of(client: kube.Kube) -> str:
    # The loading rule shows only in where requests go; in-cluster that is TLS this stand-in cannot serve.
    host: str = client.host
    return host


@pytest.fixture
def in_a_cluster(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pod's view: the service variables and a ServiceAccount token; returns the in-cluster URL."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    ca.write_text("not checked until a request is made")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "192.0.2.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return "https://192.0.2.1:443"


def default_kubeconfig(monkeypatch: pytest.MonkeyPatch, path: pathlib.Path) -> None:
    # The client reads $KUBECONFIG once, when imported: set what it made of it.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


@pytest.mark.usefixtures("in_a_cluster")
def test_an_explicit_kubeconfig_wins_even_inside_a_cluster(
    tmp_path: pathlib.Path, api_server: ApiServer
) -> None:
    client = kube.Kube.connect(str(write_kubeconfig(tmp_path / "config", api_server.url)))
    assert host_of(client) == api_server.url


def test_inside_a_cluster_the_service_account_wins_over_the_default_kubeconfig(
    tmp_path: pathlib.Path, api_server: ApiServer, in_a_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_kubeconfig(monkeypatch, write_kubeconfig(tmp_path / "config", api_server.url))
    assert host_of(kube.Kube.connect()) == in_a_cluster


@pytest.mark.usefixtures("outside_a_cluster")
def test_outside_a_cluster_the_default_kubeconfig_is_used(
    tmp_path: pathlib.Path, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_kubeconfig(monkeypatch, write_kubeconfig(tmp_path / "config", api_server.url))
    client = kube.Kube.connect()
    api_server.answers["POST", TOKEN_REVIEWS] = (201, {"status": {"authenticated": False}})
    assert client.review_token("t") is None
    assert [request.path for request in api_server.requests] == [TOKEN_REVIEWS]


@pytest.fixture
def client(tmp_path: pathlib.Path, api_server: ApiServer) -> kube.Kube:
    return kube.Kube.connect(str(write_kubeconfig(tmp_path / "config", api_server.url)))


def test_a_valid_token_gives_the_user_the_token_review_names(
    client: kube.Kube, api_server: ApiServer
) -> None:
    user = {"username": "alice", "uid": "1", "groups": ["devs"], "extra": {"scope": ["a"]}}
    api_server.answers["POST", TOKEN_REVIEWS] = (201, {"status": {"authenticated": True, "user": user}})
    assert client.review_token("alice-token") == user
    assert api_server.requests[0].body["spec"] == {"token": "alice-token"}


def test_an_access_review_answers_whether_the_spec_is_allowed(
    client: kube.Kube, api_server: ApiServer
) -> None:
    spec = {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "hsmsecrets"}}
    api_server.answers["POST", ACCESS_REVIEWS] = (201, {"status": {"allowed": True}})
    assert client.review_access(spec)
    assert api_server.requests[0].body["spec"] == spec
    api_server.answers["POST", ACCESS_REVIEWS] = (201, {"status": {"allowed": False}})
    assert not client.review_access(spec)


def test_a_failed_review_is_a_kube_error_with_its_status(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["POST", TOKEN_REVIEWS] = (500, {"kind": "Status", "message": "echoes alice-token"})
    with pytest.raises(kube.KubeError) as failed:
        client.review_token("alice-token")
    assert failed.value.status == 500
    assert "alice-token" not in str(failed.value)


def test_a_new_pin_goes_to_the_secret_the_device_names(client: kube.Kube, api_server: ApiServer) -> None:
    device = f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/hsm/{constants.PLURAL_DEVICE}/pico"
    spec = {
        "deviceType": "PicoHSM",
        "pkcs11": {"libraryPath": "/lib/p.so", "pinSecret": {"name": "pico-pin", "key": "pin"}},
    }
    api_server.answers["GET", device] = (200, {"spec": spec})
    api_server.answers["PATCH", "/api/v1/namespaces/hsm/secrets/pico-pin"] = (200, {})
    client.update_pin("hsm", "pico", "654321")
    patch = api_server.requests[-1]
    assert patch.body == {"data": {"pin": base64.b64encode(b"654321").decode()}}


def test_a_pin_for_an_unknown_device_is_not_found(client: kube.Kube, api_server: ApiServer) -> None:
    with pytest.raises(kube.NotFound):
        client.update_pin("hsm", "missing", "654321")
    assert all(request.method == "GET" for request in api_server.requests)


SECRETS = "/api/v1/namespaces/app/secrets"
STATUS = f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/app/{constants.PLURAL_SECRET}/db/status"


def test_a_secret_is_created_with_the_callers_token(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["POST", SECRETS] = (201, {"metadata": {"resourceVersion": "7"}})
    manifest = {"kind": "Secret", "metadata": {"name": "db", "namespace": "app"}, "data": {"k": "dg=="}}
    assert client.create(manifest) == {"metadata": {"resourceVersion": "7"}}
    request = api_server.requests[-1]
    assert request.body == manifest
    assert request.headers["authorization"].lower() == "bearer t"


def test_a_secret_that_exists_is_a_conflict(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["POST", SECRETS] = (409, {"kind": "Status", "message": "echoes dg=="})
    with pytest.raises(kube.Conflict) as failed:
        client.create({"kind": "Secret", "metadata": {"name": "db", "namespace": "app"}, "data": {}})
    assert "dg==" not in str(failed.value)


def test_a_status_is_merge_patched(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["PATCH", STATUS] = (200, {"status": {"syncStatus": "InSync"}})
    client.patch_status(constants.KIND_SECRET, "app", "db", {"syncStatus": "InSync"})
    request = api_server.requests[-1]
    assert request.body == {"status": {"syncStatus": "InSync"}}
    assert request.headers["Content-Type"] == "application/merge-patch+json"


def test_a_status_of_a_deleted_object_is_not_found(client: kube.Kube, api_server: ApiServer) -> None:
    with pytest.raises(kube.NotFound):
        client.patch_status(constants.KIND_SECRET, "app", "db", {"syncStatus": "InSync"})


def test_a_statefulset_is_merge_patched_on_apps_v1(client: kube.Kube, api_server: ApiServer) -> None:
    path = "/apis/apps/v1/namespaces/app/statefulsets/ledger"
    api_server.answers["PATCH", path] = (200, {"kind": "StatefulSet"})
    patch = {"spec": {"template": {"metadata": {"annotations": {"a": "b"}}}}}
    client.patch_workload("StatefulSet", "app", "ledger", patch)
    request = api_server.requests[-1]
    assert (request.path, request.body) == (path, patch)
    assert request.headers["Content-Type"] == "application/merge-patch+json"


def test_a_secret_is_patched_by_strategic_merge_and_an_hsmsecret_by_merge(
    client: kube.Kube, api_server: ApiServer
) -> None:
    secret, hsmsecret = (
        "/api/v1/namespaces/app/secrets/db",
        "/apis/hsm.j5t.io/v1alpha1/namespaces/app/hsmsecrets/db",
    )
    api_server.answers["PATCH", secret] = (200, {"kind": "Secret"})
    api_server.answers["PATCH", hsmsecret] = (200, {"kind": constants.KIND_SECRET})
    client.patch("Secret", "app", "db", {"data": {"k": None}})
    client.patch(constants.KIND_SECRET, "app", "db", {"metadata": {"finalizers": None}})
    first, second = api_server.requests[-2:]
    assert (first.path, first.headers["Content-Type"]) == (secret, "application/strategic-merge-patch+json")
    assert (second.path, second.headers["Content-Type"]) == (hsmsecret, "application/merge-patch+json")


def test_a_refused_workload_patch_is_a_kube_error_with_status_403(
    client: kube.Kube, api_server: ApiServer
) -> None:
    api_server.answers["PATCH", "/apis/apps/v1/namespaces/app/deployments/web"] = (403, {"kind": "Status"})
    with pytest.raises(kube.KubeError) as failed:
        client.patch_workload("Deployment", "app", "web", {})
    assert failed.value.status == 403


def test_a_full_list_follows_its_pages(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["GET", "/api/v1/secrets"] = [
        (200, {"metadata": {"continue": "c1", "resourceVersion": "9"}, "items": [{"n": 1}]}),
        (200, {"metadata": {"resourceVersion": "9"}, "items": [{"n": 2}]}),
    ]
    assert client.list_all("Secret", "a=b") == ([{"n": 1}, {"n": 2}], "9")
    assert "continue=c1" in api_server.requests[-1].query
    assert "labelSelector=a%3Db" in api_server.requests[0].query


def test_a_watch_yields_its_events_until_an_expired_version_says_gone(
    client: kube.Kube, api_server: ApiServer
) -> None:
    lines = [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
    ]
    api_server.answers["GET", "/api/v1/secrets"] = (200, "".join(json.dumps(line) + "\n" for line in lines))
    seen: list[str] = []

    def follow() -> None:
        seen.extend(event["type"] for event in client.watch("Secret", "", "11", 5))

    with pytest.raises(kube.Gone):
        follow()
    assert seen == ["ADDED", "BOOKMARK"]
    query = api_server.requests[-1].query.split("&")
    assert {"watch=true", "resourceVersion=11", "allowWatchBookmarks=true"} <= set(query)


def test_core_apps_and_custom_objects_are_read_from_their_own_api_groups(
    client: kube.Kube, api_server: ApiServer
) -> None:
    paths = {
        "ConfigMap": "/api/v1/namespaces/app/configmaps/x",
        "DaemonSet": "/apis/apps/v1/namespaces/app/daemonsets/x",
        constants.KIND_POOL: "/apis/hsm.j5t.io/v1alpha1/namespaces/app/hsmpools/x",
    }
    for kind, path in paths.items():
        api_server.answers["GET", path] = (200, {"kind": kind})
        assert client.get(kind, "app", "x") == {"kind": kind}
    assert [request.path for request in api_server.requests] == list(paths.values())


def test_names_are_quoted_into_the_path(client: kube.Kube, api_server: ApiServer) -> None:
    with pytest.raises(kube.NotFound):
        client.get("Secret", "app", "a/b")
    assert api_server.requests[-1].path == "/api/v1/namespaces/app/secrets/a%2Fb"


def test_a_kind_the_manager_does_not_handle_is_refused_before_any_request(
    client: kube.Kube, api_server: ApiServer
) -> None:
    with pytest.raises(ValueError, match="CronJob"):
        client.get("CronJob", "app", "x")
    assert api_server.requests == []


def test_a_delete_of_one_incarnation_sends_its_uid_and_absence_is_fine(
    client: kube.Kube, api_server: ApiServer
) -> None:
    path = "/apis/apps/v1/namespaces/app/deployments/web"
    api_server.answers["DELETE", path] = [(200, {}), (404, {"kind": "Status"}), (409, {"kind": "Status"})]
    client.delete("Deployment", "app", "web", uid="u-1")
    client.delete("Deployment", "app", "web")
    client.delete("Deployment", "app", "web", uid="u-0")
    first = api_server.requests[0]
    assert first.body == {"propagationPolicy": "Background", "preconditions": {"uid": "u-1"}}
    assert len(api_server.requests) == 3


def test_a_replace_puts_the_whole_object(client: kube.Kube, api_server: ApiServer) -> None:
    path = "/api/v1/namespaces/app/configmaps/conf"
    api_server.answers["PUT", path] = (200, {"kind": "ConfigMap"})
    manifest = {"kind": "ConfigMap", "metadata": {"name": "conf", "namespace": "app", "resourceVersion": "3"}}
    client.replace(manifest)
    assert (api_server.requests[-1].path, api_server.requests[-1].body) == (path, manifest)


def test_nodes_are_listed_cluster_wide_and_pods_in_every_namespace_when_none_is_named(
    client: kube.Kube, api_server: ApiServer
) -> None:
    api_server.answers["GET", "/api/v1/nodes"] = (200, {"items": [{"n": 1}]})
    api_server.answers["GET", "/api/v1/pods"] = (200, {"items": []})
    assert client.list_objects("Node", None, "role=hsm") == [{"n": 1}]
    assert client.list_objects("Pod", None, "") == []
    assert api_server.requests[0].query == "labelSelector=role%3Dhsm"


def test_a_server_behind_a_path_prefix_is_reached_under_it(
    tmp_path: pathlib.Path, api_server: ApiServer
) -> None:
    client = kube.Kube.connect(str(write_kubeconfig(tmp_path / "config", f"{api_server.url}/k8s/")))
    with pytest.raises(kube.NotFound):
        client.get("Secret", "app", "db")
    assert api_server.requests[-1].path == "/k8s/api/v1/namespaces/app/secrets/db"


def test_an_unreachable_api_server_is_a_kube_error_without_a_status(tmp_path: pathlib.Path) -> None:
    client = kube.Kube.connect(str(write_kubeconfig(tmp_path / "config", "http://127.0.0.1:9")))
    with pytest.raises(kube.KubeError, match="unreachable") as failed:
        client.get("Secret", "app", "db")
    assert failed.value.status == 0


def test_a_request_turned_away_unprocessed_is_sent_again(client: kube.Kube, api_server: ApiServer) -> None:
    api_server.answers["POST", SECRETS] = [(429, {"kind": "Status"}), (503, {"kind": "Status"}), (201, {})]
    client.create({"kind": "Secret", "metadata": {"name": "db", "namespace": "app"}, "data": {}})
    assert [request.method for request in api_server.requests] == ["POST"] * 3


def test_a_server_that_keeps_turning_requests_away_is_a_kube_error_with_its_status(
    client: kube.Kube, api_server: ApiServer
) -> None:
    api_server.answers["GET", "/api/v1/nodes"] = (429, {"kind": "Status"})
    with pytest.raises(kube.KubeError) as failed:
        client.list_objects("Node", None, "")
    assert failed.value.status == 429
    assert len(api_server.requests) == 4
