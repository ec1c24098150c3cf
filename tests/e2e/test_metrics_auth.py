"""hsm_metricsauth against the real API server: the reviews, RBAC and the nonResourceURL rule for real.

The endpoint runs in this process on the host and reviews tokens as a ServiceAccount bound to the base's
``hsm-metrics-reviews`` ClusterRole; scrapers are ServiceAccounts with tokens from the TokenRequest API,
one bound to ``hsm-metrics-reader`` and one bound to nothing.
"""

import http.client
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
import yaml

from devcluster import access, testkit
from hsm_metricsauth import server

RBAC = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kustomize" / "base" / "rbac" / "metrics.yaml"
TIMEOUT = 60.0


def _allowed(kube: testkit.Kube, user: str, attributes: dict[str, Any]) -> bool:
    """What the API server's authorizer says now (a new binding takes a moment to reach it)."""
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview"}
    review["spec"] = {"user": user, **attributes}
    answer = kube.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


@pytest.fixture(scope="module")
def accounts(kube: testkit.Kube) -> Iterator[str]:
    """A namespace with three ServiceAccounts: reviewer (the base's review role), reader (the base's reader
    role) and stranger (no binding); yields the namespace once the authorizer knows the bindings."""
    namespace = f"e2e-metrics-{uuid.uuid4().hex[:6]}"
    kube.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    bound = {"hsm-metrics-reviews": "reviewer", "hsm-metrics-reader": "reader"}
    docs: list[dict[str, Any]] = []
    for role in yaml.safe_load_all(RBAC.read_text()):
        if not role or role["kind"] != "ClusterRole":
            continue
        account, name = bound[role["metadata"]["name"]], f"{role['metadata']['name']}-{namespace}"
        role["metadata"] = {"name": name, "labels": {"hsm.j5t.io/e2e-namespace": namespace}}
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"hsm.j5t.io/e2e-namespace": namespace}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
        docs += [role, binding]
    for account in ("reviewer", "reader", "stranger"):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": account, "namespace": namespace},
            }
        )
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    prefix = f"system:serviceaccount:{namespace}"
    reviews = {
        "resourceAttributes": {"group": "authentication.k8s.io", "resource": "tokenreviews", "verb": "create"}
    }
    reads = {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}
    testkit.poll(
        lambda: _allowed(kube, f"{prefix}:reviewer", reviews) and _allowed(kube, f"{prefix}:reader", reads),
        TIMEOUT,
        "the bindings in force",
    )
    yield namespace
    kube.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"hsm.j5t.io/e2e-namespace={namespace}")
    kube.client.request("DELETE", f"/api/v1/namespaces/{namespace}")


@pytest.fixture(scope="module")
def endpoint(kube: testkit.Kube, accounts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint on 127.0.0.1, reviewing as the reviewer ServiceAccount; yields its address."""
    kubeconfig = kube.service_account_kubeconfig(accounts, "reviewer", tmp_path_factory.mktemp("m") / "kc")
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("e2e_scrapes", "Something to find", registry=registry).inc()
    settings = server.Settings("127.0.0.1:0", kubeconfig=str(kubeconfig))
    found = server.build(settings, registry, "e2e_metrics_certificate_expiry_timestamp_seconds")
    found.start()
    yield f"127.0.0.1:{found.port}"
    found.stop()


def test_without_a_token_the_answer_is_401(endpoint: str) -> None:
    status, text = testkit.scrape(endpoint, None)
    assert status == 401
    assert "e2e_scrapes" not in text


def test_a_token_the_api_server_never_issued_is_401(endpoint: str) -> None:
    assert testkit.scrape(endpoint, "not-a-token")[0] == 401


def test_a_service_account_without_the_reader_role_gets_403(
    kube: testkit.Kube, accounts: str, endpoint: str
) -> None:
    status, text = testkit.scrape(endpoint, access.service_account_token(kube.client, accounts, "stranger"))
    assert status == 403
    assert "e2e_scrapes" not in text


def test_a_service_account_bound_to_the_reader_role_gets_the_metrics(
    kube: testkit.Kube, accounts: str, endpoint: str
) -> None:
    status, text = testkit.scrape(endpoint, access.service_account_token(kube.client, accounts, "reader"))
    assert status == 200
    assert "e2e_scrapes_total 1.0" in text
    assert "e2e_metrics_certificate_expiry_timestamp_seconds " in text


def test_plain_http_gets_no_metrics(endpoint: str) -> None:
    host, _, port = endpoint.rpartition(":")
    plain = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        plain.request("GET", "/metrics")
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.getresponse()
    finally:
        plain.close()
