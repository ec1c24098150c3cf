"""The API's serving certificate: issued for the Service's names, renewed when due, a user's Secret left
alone, and the CA that signs it published in a ConfigMap."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509

from hsm_manager.gateway import pki
from hsm_manager.operator import apitls, config

from .. import fakes
from ..polling import wait_until

NS = "hsm-system"
NAMES = ["hsm-api", "hsm-api.hsm-system", "hsm-api.hsm-system.svc", "hsm-api.hsm-system.svc.cluster.local"]


def _cert(cluster: fakes.FakeKube) -> bytes:
    stored = cluster.stored("Secret", NS, pki.API_TLS_SECRET)
    assert stored is not None
    return base64.b64decode(stored["data"]["tls.crt"])


def _published(cluster: fakes.FakeKube) -> str:
    stored = cluster.stored("ConfigMap", NS, pki.API_CA_CONFIGMAP)
    assert stored is not None
    return str(stored["data"][pki.API_CA_KEY])


def test_the_api_leaf_names_the_service_and_is_signed_by_the_ca() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    cert = _cert(cluster)
    assert sorted(pki.subject_names(cert)) == sorted(NAMES)
    x509.load_pem_x509_certificate(cert).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert))
    assert _published(cluster) == ca.cert.decode()


def test_a_current_leaf_is_kept() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    certificate = apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS))
    certificate.check()
    first = _cert(cluster)
    cluster.calls.clear()
    certificate.check()
    assert _cert(cluster) == first
    assert cluster.calls == []


def test_a_leaf_near_its_expiry_is_replaced_in_the_same_secret() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    old = pki.issue_serving(ca, NAMES, now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=70))
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": pki.API_TLS_SECRET, "namespace": NS},
            "data": {
                "tls.crt": base64.b64encode(old.cert).decode(),
                "tls.key": base64.b64encode(old.key).decode(),
            },
        }
    )
    apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    assert _cert(cluster) != old.cert
    assert ("replace", "Secret", pki.API_TLS_SECRET) in cluster.calls


def test_a_leaf_whose_key_does_not_match_is_replaced() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    leaf, other = pki.issue_serving(ca, NAMES), pki.issue_serving(ca, NAMES)
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": pki.API_TLS_SECRET, "namespace": NS},
            "data": {
                "tls.crt": base64.b64encode(leaf.cert).decode(),
                "tls.key": base64.b64encode(other.key).decode(),
            },
        }
    )
    apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    assert _cert(cluster) != leaf.cert


def test_a_deleted_secret_is_issued_again_at_once_not_at_the_next_hourly_check() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    certificate = apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS))
    certificate.start()
    try:
        first = wait_until(lambda: cluster.stored("Secret", NS, pki.API_TLS_SECRET), 5, "the first leaf")
        cluster.delete("Secret", NS, pki.API_TLS_SECRET)
        certificate.noticed("DELETED", first)
        wait_until(
            lambda: (
                (found := cluster.stored("Secret", NS, pki.API_TLS_SECRET)) and found["data"] != first["data"]
            ),
            5,
            "a new leaf",
        )
    finally:
        certificate.stop()


def test_a_leaf_for_other_names_is_replaced() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    apitls.ApiCertificate(
        cluster, lambda: ca, config.OperatorConfig(namespace=NS, api_service="old-api")
    ).check()
    apitls.ApiCertificate(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    assert sorted(pki.subject_names(_cert(cluster))) == sorted(NAMES)


def test_a_user_supplied_secret_is_not_touched_and_its_ca_is_published() -> None:
    cluster, ca, theirs = fakes.FakeKube(), pki.new_ca(), pki.new_ca()
    leaf = pki.issue_serving(theirs, NAMES)
    supplied = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "cert-manager-api", "namespace": NS},
        "data": {
            k: base64.b64encode(v).decode() for k, v in {"tls.crt": leaf.cert, "ca.crt": theirs.cert}.items()
        },
    }
    cluster.add(supplied)
    cfg = config.OperatorConfig(namespace=NS, api_tls_secret="cert-manager-api", api_tls_issue=False)
    apitls.ApiCertificate(cluster, lambda: ca, cfg).check()
    assert cluster.calls == [("create", "ConfigMap", pki.API_CA_CONFIGMAP)]
    assert _published(cluster) == theirs.cert.decode()
