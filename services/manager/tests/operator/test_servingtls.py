"""The operator's serving certificates: the API's issued for the Service's names, renewed when due, a user's
Secret left alone; the metrics endpoints' for the four metrics Services, whatever the API's; and the CAs
that sign them published in ConfigMaps."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509

from hsm_common import constants
from hsm_manager.gateway import pki
from hsm_manager.operator import config, servingtls

from .. import fakes
from ..polling import wait_until

NS = "hsm-system"
NAMES = ["hsm-api", "hsm-api.hsm-system", "hsm-api.hsm-system.svc", "hsm-api.hsm-system.svc.cluster.local"]


METRICS_NAMES = [
    f"{service}{suffix}"
    for service in ("hsm-manager-metrics", "hsm-api-metrics", "hsm-agent-metrics", "hsm-discovery-metrics")
    for suffix in ("", ".hsm-system", ".hsm-system.svc", ".hsm-system.svc.cluster.local")
]


def _cert(cluster: fakes.FakeKube, secret: str = pki.API_TLS_SECRET) -> bytes:
    stored = cluster.stored("Secret", NS, secret)
    assert stored is not None
    return base64.b64decode(stored["data"]["tls.crt"])


def _published(cluster: fakes.FakeKube, configmap: str = pki.API_CA_CONFIGMAP) -> str:
    stored = cluster.stored("ConfigMap", NS, configmap)
    assert stored is not None
    return str(stored["data"][pki.API_CA_KEY])


def test_the_api_leaf_names_the_service_and_is_signed_by_the_ca() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    cert = _cert(cluster)
    assert sorted(pki.subject_names(cert)) == sorted(NAMES)
    x509.load_pem_x509_certificate(cert).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert))
    assert _published(cluster) == ca.cert.decode()


def test_a_current_leaf_is_kept() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    certificate = servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS))
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
    servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
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
    servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
    assert _cert(cluster) != leaf.cert


def test_a_deleted_secret_is_issued_again_at_once_not_at_the_next_hourly_check() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    certificate = servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS))
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
    servingtls.ServingCertificates(
        cluster, lambda: ca, config.OperatorConfig(namespace=NS, api_service="old-api")
    ).check()
    servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS)).check()
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
    servingtls.ServingCertificates(cluster, lambda: ca, cfg).check()
    assert ("replace", "Secret", "cert-manager-api") not in cluster.calls
    assert ("create", "Secret", pki.API_TLS_SECRET) not in cluster.calls
    assert _published(cluster) == theirs.cert.decode()


def test_the_metrics_leaf_names_every_metrics_service_and_its_ca_is_published_apart_from_the_apis() -> None:
    cluster, ca, theirs = fakes.FakeKube(), pki.new_ca(), pki.new_ca()
    leaf = pki.issue_serving(theirs, NAMES)
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "cert-manager-api", "namespace": NS},
            "data": {
                k: base64.b64encode(v).decode()
                for k, v in {"tls.crt": leaf.cert, "ca.crt": theirs.cert}.items()
            },
        }
    )
    cfg = config.OperatorConfig(namespace=NS, api_tls_secret="cert-manager-api", api_tls_issue=False)
    servingtls.ServingCertificates(cluster, lambda: ca, cfg).check()
    cert = _cert(cluster, constants.METRICS_TLS_SECRET)
    assert sorted(pki.subject_names(cert)) == sorted(METRICS_NAMES)
    x509.load_pem_x509_certificate(cert).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert))
    assert _published(cluster, pki.METRICS_CA_CONFIGMAP) == ca.cert.decode()
    assert _published(cluster) == theirs.cert.decode()


def test_the_metrics_ca_configmap_carries_every_trusted_ca() -> None:
    cluster, signing, following = fakes.FakeKube(), pki.new_ca(), pki.new_ca()
    bundle = signing.cert + following.cert
    cfg = config.OperatorConfig(namespace=NS)
    servingtls.ServingCertificates(cluster, lambda: signing, cfg, lambda: bundle).check()
    assert _published(cluster, pki.METRICS_CA_CONFIGMAP) == bundle.decode()


def test_a_metrics_leaf_of_the_previous_ca_is_issued_again_by_the_one_that_signs_now() -> None:
    cluster, old, new = fakes.FakeKube(), pki.new_ca(), pki.new_ca()
    cfg = config.OperatorConfig(namespace=NS)
    servingtls.ServingCertificates(cluster, lambda: old, cfg).check()
    servingtls.ServingCertificates(cluster, lambda: new, cfg).check()
    served = x509.load_pem_x509_certificate(_cert(cluster, constants.METRICS_TLS_SECRET))
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(new.cert))


def test_a_deleted_metrics_secret_is_issued_again_at_once() -> None:
    cluster, ca = fakes.FakeKube(), pki.new_ca()
    certificate = servingtls.ServingCertificates(cluster, lambda: ca, config.OperatorConfig(namespace=NS))
    certificate.start()
    try:
        first = wait_until(
            lambda: cluster.stored("Secret", NS, constants.METRICS_TLS_SECRET), 5, "the first metrics leaf"
        )
        cluster.delete("Secret", NS, constants.METRICS_TLS_SECRET)
        certificate.noticed("DELETED", first)
        wait_until(
            lambda: (
                (found := cluster.stored("Secret", NS, constants.METRICS_TLS_SECRET))
                and found["data"] != first["data"]
            ),
            5,
            "a new metrics leaf",
        )
    finally:
        certificate.stop()
