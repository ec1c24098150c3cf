"""hsm_manager_certificate_expiry_timestamp_seconds shows the API's serving certificate (role "api"), whether
the operator issues it or the user supplies it, and the metrics endpoints' (role "metrics")."""

from __future__ import annotations

import base64

from cryptography import x509

from hsm_common import constants
from hsm_manager.gateway import castore, endpoints, pki
from hsm_manager.operator import config, devices, metrics, rotation, servingtls

from .. import fakes

NS = "hsm-system"


def _shown() -> dict[tuple[str, str], float]:
    return {
        (s.labels["role"], s.labels["name"]): s.value
        for family in metrics.CERTIFICATE_EXPIRY.collect()
        for s in family.samples
        if s.labels["namespace"] == NS
    }


def _round(cluster: fakes.FakeKube, cfg: config.OperatorConfig) -> None:
    holder = castore.Holder(castore.load(cluster, NS))
    certificate = servingtls.ServingCertificates(cluster, lambda: holder.current().signing, cfg)
    rotation.Rotation(
        cluster,
        NS,
        holder,
        endpoints.StaticDirectory([]),
        devices.Devices(NS),
        rotation.Settings(interval=0),
        followers=[certificate.check],
        api_tls_secret=cfg.api_tls_secret,
    ).round_once()


def _not_after(cluster: fakes.FakeKube, name: str) -> float:
    stored = cluster.stored("Secret", NS, name)
    assert stored is not None
    cert = x509.load_pem_x509_certificate(base64.b64decode(stored["data"]["tls.crt"]))
    return cert.not_valid_after_utc.timestamp()


def test_the_api_leaf_the_operator_issues_shows_its_expiry() -> None:
    cluster = fakes.FakeKube()
    _round(cluster, config.OperatorConfig(namespace=NS))
    assert _shown()[("api", pki.API_TLS_SECRET)] == _not_after(cluster, pki.API_TLS_SECRET)


def test_a_supplied_api_leaf_shows_its_expiry() -> None:
    cluster, theirs = fakes.FakeKube(), pki.new_ca()
    leaf = pki.issue_serving(theirs, ["hsm-api"])
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "cert-manager-api", "namespace": NS},
            "data": {
                k: base64.b64encode(v).decode()
                for k, v in {"tls.crt": leaf.cert, "tls.key": leaf.key}.items()
            },
        }
    )
    _round(
        cluster, config.OperatorConfig(namespace=NS, api_tls_secret="cert-manager-api", api_tls_issue=False)
    )
    assert _shown()[("api", "cert-manager-api")] == _not_after(cluster, "cert-manager-api")


def test_a_supplied_secret_not_made_yet_shows_no_api_expiry_and_the_others_still_show() -> None:
    cluster = fakes.FakeKube()
    _round(
        cluster, config.OperatorConfig(namespace=NS, api_tls_secret="cert-manager-api", api_tls_issue=False)
    )
    shown = _shown()
    assert not any(role == "api" for role, _ in shown)
    assert ("client", pki.CLIENT_SECRET) in shown


def test_the_metrics_leaf_shows_its_expiry() -> None:
    cluster = fakes.FakeKube()
    _round(cluster, config.OperatorConfig(namespace=NS))
    name = constants.METRICS_TLS_SECRET
    assert _shown()[("metrics", name)] == _not_after(cluster, name)
