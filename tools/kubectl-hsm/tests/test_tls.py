"""``kubectl hsm`` verifies the API's HTTPS certificate against a real TLS server on 127.0.0.1: with the
API's CA and the Service's name it connects; otherwise it refuses and says what to do."""

from __future__ import annotations

import collections.abc
import datetime
import http.server
import json
import pathlib
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubectl_hsm import client, connect

SERVICE_NAME = "hsm-api.hsm-system.svc"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _signed(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey,
            ca: bool) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(SERVICE_NAME)]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"success": True, "data": {"status": "ok"}, "error": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("pki")
    ca_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    files = {
        "ca": _pem(_signed("test CA", "test CA", ca_key, ca_key, ca=True)),
        "other_ca": _pem(_signed("other CA", "other CA", other_key, other_key, ca=True)),
        "cert": _pem(_signed(SERVICE_NAME, "test CA", leaf_key, ca_key, ca=False)),
        "key": leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name, content in files.items():
        (root / name).write_bytes(content)
    return {name: root / name for name in files}


@pytest.fixture(scope="module")
def server(pki_files: dict[str, pathlib.Path]) -> collections.abc.Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate for the Service's name; yields its port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki_files["cert"], pki_files["key"])
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield str(httpd.server_address[1])
    httpd.shutdown()
    thread.join(5)


def _health(target: connect.Target) -> int:
    status, _ = client.Client(target).request("GET", "/health")
    return status


def test_the_api_is_verified_with_its_ca_and_the_service_name(
    server: str, pki_files: dict[str, pathlib.Path]
) -> None:
    target = connect.Target(
        f"https://127.0.0.1:{server}", "t", str(pki_files["ca"]), server_name=SERVICE_NAME
    )
    assert _health(target) == 200


def test_a_server_signed_by_another_ca_is_refused_with_what_to_do(
    server: str, pki_files: dict[str, pathlib.Path]
) -> None:
    target = connect.Target(
        f"https://127.0.0.1:{server}", "t", str(pki_files["other_ca"]), server_name=SERVICE_NAME
    )
    with pytest.raises(client.ApiError, match="not signed by the CA") as raised:
        _health(target)
    assert raised.value.code == "TLS_UNVERIFIED"
    assert "--certificate-authority FILE" in str(raised.value)
    assert "hsm-api-ca" in str(raised.value)


def test_a_certificate_for_another_name_is_refused_with_what_to_do(
    server: str, pki_files: dict[str, pathlib.Path]
) -> None:
    target = connect.Target(
        f"https://127.0.0.1:{server}", "t", str(pki_files["ca"]), server_name="elsewhere.svc"
    )
    with pytest.raises(client.ApiError, match=r"not for elsewhere\.svc") as raised:
        _health(target)
    assert "--tls-server-name" in str(raised.value)


def test_skipping_verification_is_explicit_and_then_connects(server: str) -> None:
    assert _health(connect.Target(f"https://127.0.0.1:{server}", "t", insecure=True)) == 200


def test_plain_http_to_the_https_port_says_to_use_https(server: str) -> None:
    with pytest.raises(client.ApiError, match="HTTPS only"):
        _health(connect.Target(f"http://127.0.0.1:{server}", "t"))


def test_the_token_is_not_in_the_target_s_repr() -> None:
    assert "s3cret-token" not in repr(connect.Target("https://h", "s3cret-token"))
