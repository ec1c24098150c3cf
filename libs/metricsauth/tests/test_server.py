"""The endpoint: HTTPS only, 401 without a valid token, 403 without the permission, metrics to a reader."""

from __future__ import annotations

import datetime
import os
import pathlib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm_metricsauth import server

Serve = Callable[..., server.MetricsServer]


def test_a_reader_gets_the_metrics_and_the_certificates_expiry(review_api: Any, serve: Serve) -> None:
    found = review_api.scrape(serve().port)
    assert found.status == 200
    assert found.headers["Content-Type"].startswith("text/plain; version=")
    assert "test_scrapes_total 1.0" in found.text
    expiry = next(
        float(line.split()[1])
        for line in found.text.splitlines()
        if line.startswith("test_metrics_certificate_expiry_timestamp_seconds ")
    )
    assert 364 * 86400 < expiry - time.time() <= 365 * 86400


def test_no_token_is_401_with_a_bearer_challenge(review_api: Any, serve: Serve) -> None:
    found = review_api.scrape(serve().port, token=None)
    assert (found.status, found.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert "test_scrapes" not in found.text


def test_a_token_the_api_server_does_not_accept_is_401(review_api: Any, serve: Serve) -> None:
    assert review_api.scrape(serve().port, token="made-up").status == 401


def test_a_valid_token_without_the_permission_is_403(review_api: Any, serve: Serve) -> None:
    found = review_api.scrape(serve().port, token=review_api.stranger)
    assert found.status == 403
    assert "test_scrapes" not in found.text


def test_an_api_server_in_trouble_is_503_and_a_log_line_without_the_token(
    review_api: Any, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    review_api.failing = True
    assert review_api.scrape(serve().port).status == 503
    assert [r.getMessage() for r in caplog.records] == ["metrics_review_unavailable"]
    assert review_api.reader not in caplog.text
    assert review_api.reader not in repr(caplog.records[0].__dict__)


def test_repeated_scrapes_cost_one_review(review_api: Any, serve: Serve) -> None:
    port = serve().port
    for _ in range(5):
        assert review_api.scrape(port).status == 200
    assert len(review_api.reviews) == 2  # one TokenReview, one SubjectAccessReview


def test_plain_http_gets_no_answer(serve: Serve) -> None:
    with socket.create_connection(("127.0.0.1", serve().port), timeout=5) as plain:
        plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        try:
            while chunk := plain.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/" not in answer
    assert b"test_scrapes" not in answer


def test_other_paths_are_404(review_api: Any, serve: Serve) -> None:
    assert review_api.scrape(serve().port, path="/healthz").status == 404


def _write_pair(directory: pathlib.Path, days: int) -> int:
    """A self-signed pair valid for days, written as a mounted Secret's files; its serial."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "metrics")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256())
    )  # fmt: skip
    staged = directory / f"..{cert.serial_number}"
    staged.mkdir()
    (staged / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (staged / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # The kubelet's swap: ..data repointed at once, the file names link through it.
    (directory / "..data_tmp").symlink_to(staged.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    for file in ("tls.crt", "tls.key"):
        if not (directory / file).is_symlink():
            (directory / file).symlink_to(f"..data/{file}")
    return cert.serial_number


def _served_serial(port: int) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_certificate_from_files_is_served_and_a_swapped_one_reaches_new_connections(
    review_api: Any, serve: Serve, tmp_path: pathlib.Path
) -> None:
    mount = tmp_path / "tls"
    mount.mkdir()
    first = _write_pair(mount, days=90)
    endpoint = serve(mount)
    assert _served_serial(endpoint.port) == first
    renewed = _write_pair(mount, days=30)
    assert _served_serial(endpoint.port) == renewed
    found = review_api.scrape(endpoint.port)
    expiry = next(
        float(line.split()[1])
        for line in found.text.splitlines()
        if line.startswith("test_metrics_certificate_expiry_timestamp_seconds ")
    )
    assert 29 * 86400 < expiry - time.time() <= 30 * 86400


def test_without_credentials_for_the_reviews_the_endpoint_does_not_start(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, registry: Any
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(server.SetupError, match="reviews every scraper's token"):
        server.build(server.Settings("127.0.0.1:0"), registry, "x_expiry")


def _self_signed_served(port: int) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return cert.issuer == cert.subject and cert.subject.rfc4514_string().endswith(" metrics")


def _expiry(review_api: Any, port: int) -> float:
    found = review_api.scrape(port)
    return next(
        float(line.split()[1])
        for line in found.text.splitlines()
        if line.startswith("test_metrics_certificate_expiry_timestamp_seconds ")
    )


def test_a_directory_the_secret_has_not_filled_yet_serves_self_signed_until_the_pair_appears(
    review_api: Any, serve: Serve, tmp_path: pathlib.Path
) -> None:
    endpoint = serve(tmp_path)
    assert _self_signed_served(endpoint.port)
    assert 364 * 86400 < _expiry(review_api, endpoint.port) - time.time() <= 365 * 86400
    issued = _write_pair(tmp_path, days=90)
    assert _served_serial(endpoint.port) == issued
    assert 89 * 86400 < _expiry(review_api, endpoint.port) - time.time() <= 90 * 86400


def test_a_pair_that_appears_but_does_not_load_leaves_the_self_signed_one_served(
    serve: Serve, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = serve(tmp_path)
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    assert _self_signed_served(endpoint.port)
    assert _self_signed_served(endpoint.port)
    assert [r.getMessage() for r in caplog.records].count("metrics_certificate_unloadable") == 1


def test_a_certificate_directory_whose_pair_does_not_load_does_not_start(
    review_api: Any, tmp_path: pathlib.Path, registry: Any
) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    settings = server.Settings("127.0.0.1:0", str(tmp_path), str(review_api.kubeconfig))
    with pytest.raises(server.SetupError, match="does not load"):
        server.build(settings, registry, "x_expiry")
