"""A small PKI and a real gRPC server on 127.0.0.1 for the channel tests."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hsmproto import channel
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc


@dataclasses.dataclass(frozen=True)
class Leaf:
    cert: bytes
    key: bytes


@dataclasses.dataclass(frozen=True)
class PKI:
    ca: bytes
    server: Leaf
    client: Leaf
    stranger: Leaf
    """A client certificate from another CA."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: str, *, ca: bool, server: bool
) -> tuple[bytes, bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key, key


@pytest.fixture(scope="session")
def pki() -> PKI:
    ca_cert, _, ca_key = _issue("test-ca", None, "test-ca", ca=True, server=False)
    server_cert, server_key, _ = _issue("agent-a", ca_key, "test-ca", ca=False, server=True)
    client_cert, client_key, _ = _issue("manager", ca_key, "test-ca", ca=False, server=False)
    _, _, other_ca_key = _issue("other-ca", None, "other-ca", ca=True, server=False)
    stranger_cert, stranger_key, _ = _issue("stranger", other_ca_key, "other-ca", ca=False, server=False)
    return PKI(
        ca=ca_cert,
        server=Leaf(server_cert, server_key),
        client=Leaf(client_cert, client_key),
        stranger=Leaf(stranger_cert, stranger_key),
    )


class EchoHealth(hsm_pb2_grpc.HSMAgentServicer):
    """Answers Health and echoes the size of a written secret, enough to exercise channels."""

    def Health(self, request: hsm_pb2.HealthRequest, context: grpc.ServicerContext) -> hsm_pb2.HealthResponse:
        return hsm_pb2.HealthResponse(status="ok", message="")

    def WriteSecret(
        self, request: hsm_pb2.WriteSecretRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.WriteSecretResponse:
        return hsm_pb2.WriteSecretResponse(version=sum(len(v) for v in request.secret_data.data.values()))


def start_server(credentials: grpc.ServerCredentials | None) -> tuple[grpc.Server, str]:
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=channel.server_options())
    hsm_pb2_grpc.add_HSMAgentServicer_to_server(EchoHealth(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def plain_server() -> Iterator[str]:
    server, address = start_server(None)
    yield address
    server.stop(grace=None)


@pytest.fixture
def mtls_server(pki: PKI) -> Iterator[str]:
    credentials = grpc.ssl_server_credentials(
        [(pki.server.key, pki.server.cert)], root_certificates=pki.ca, require_client_auth=True
    )
    server, address = start_server(credentials)
    yield address
    server.stop(grace=None)
