"""Where the reviews go: the pod's ServiceAccount, else a kubeconfig with a bearer token."""

from __future__ import annotations

import base64
import datetime
import json
import pathlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm_metricsauth import credentials


def _kubeconfig(path: pathlib.Path, cluster: dict[str, object], user: dict[str, object]) -> pathlib.Path:
    path.write_text(
        json.dumps(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_in_a_pod_the_service_accounts_token_file_is_used(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "ca.crt").write_bytes(_ca())
    found = credentials.in_cluster(str(tmp_path))
    assert found is not None
    assert (found.host, found.port, found.tls is not None) == ("10.96.0.1", 443, True)
    assert found.bearer() == "first"
    (tmp_path / "token").write_text("rotated\n")
    assert found.bearer() == "rotated"


def test_outside_a_pod_there_is_no_in_cluster_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert credentials.in_cluster() is None


def test_a_kubeconfig_gives_its_server_ca_and_token(tmp_path: pathlib.Path) -> None:
    ca = base64.b64encode(_ca()).decode()
    path = _kubeconfig(
        tmp_path / "kc",
        {"server": "https://127.0.0.1:6443", "certificate-authority-data": ca},
        {"token": "t"},
    )
    found = credentials.from_kubeconfig(path)
    assert (found.host, found.port, found.bearer()) == ("127.0.0.1", 6443, "t")
    assert found.tls is not None
    assert found.tls.get_ca_certs()


def test_a_kubeconfig_token_file_is_relative_to_the_kubeconfig(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sa-token").write_text("from-file")
    path = _kubeconfig(tmp_path / "kc", {"server": "http://127.0.0.1:8001"}, {"tokenFile": "sa-token"})
    found = credentials.from_kubeconfig(path)
    assert (found.tls, found.bearer()) == (None, "from-file")


def test_a_kubeconfig_user_without_a_token_is_refused(tmp_path: pathlib.Path) -> None:
    path = _kubeconfig(tmp_path / "kc", {"server": "https://h"}, {"client-certificate": "c.crt"})
    with pytest.raises(credentials.Missing, match="no bearer token"):
        credentials.from_kubeconfig(path)


def test_an_explicit_kubeconfig_wins_over_the_service_account(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    path = _kubeconfig(tmp_path / "kc", {"server": "http://127.0.0.1:8001"}, {"token": "explicit"})
    assert credentials.load(str(path)).bearer() == "explicit"


def _ca() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)
