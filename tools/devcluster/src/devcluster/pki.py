"""Certificates and keys for one cluster run: a CA, serving certs (apiserver, nodes), client certificates."""

import dataclasses
import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import oid

_VALIDITY = datetime.timedelta(days=30)

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the PKI files of a run live."""

    ca_cert: pathlib.Path
    ca_key: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    admin_cert: pathlib.Path
    admin_key: pathlib.Path
    sa_key: pathlib.Path
    sa_pub: pathlib.Path

    @classmethod
    def under(cls, directory: pathlib.Path) -> "Paths":
        """The conventional file names inside ``directory``."""
        return cls(
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            server_cert=directory / "apiserver.crt",
            server_key=directory / "apiserver.key",
            admin_cert=directory / "admin.crt",
            admin_key=directory / "admin.key",
            sa_key=directory / "sa.key",
            sa_pub=directory / "sa.pub",
        )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    # Backdate a little: the processes check validity against their own clock the moment they start.
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
    )


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def create(paths: Paths, extra_server_ips: tuple[str, ...] = ()) -> None:
    """Write a fresh CA, serving and admin certificates and the service-account key pair."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("devcluster-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        # Inside the cluster: the `kubernetes` Service and the forwarder address in every node namespace.
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_server_ips),
    ]
    server_cert, server_key = _leaf(
        ca_key, ca_name, _name("kube-apiserver"), oid.ExtendedKeyUsageOID.SERVER_AUTH, server_sans
    )
    # O=system:masters puts the admin in the group RBAC grants everything without any binding.
    admin_cert, admin_key = _leaf(
        ca_key, ca_name, _name("devcluster-admin", "system:masters"), oid.ExtendedKeyUsageOID.CLIENT_AUTH, []
    )
    # Service-account tokens are signed with RS256 by default, so this key is RSA.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files: dict[pathlib.Path, bytes] = {
        paths.ca_cert: ca_cert.public_bytes(serialization.Encoding.PEM),
        paths.ca_key: _key_pem(ca_key),
        paths.server_cert: server_cert.public_bytes(serialization.Encoding.PEM),
        paths.server_key: _key_pem(server_key),
        paths.admin_cert: admin_cert.public_bytes(serialization.Encoding.PEM),
        paths.admin_key: _key_pem(admin_key),
        paths.sa_key: _key_pem(sa_key),
        paths.sa_pub: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if path.suffix == ".key":
            path.chmod(0o600)


def issue(
    paths: Paths,
    cert: pathlib.Path,
    common_name: str,
    organization: str | None = None,
    server_ips: tuple[str, ...] = (),
) -> pathlib.Path:
    """Write a leaf signed by the run's CA to ``cert`` (key beside it, ``.key``); a client certificate unless
    ``server_ips`` are given, then a serving certificate for those addresses. Returns the key's path."""
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{paths.ca_key} is not the EC key this module writes")
    ca_name = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes()).subject
    usage = oid.ExtendedKeyUsageOID.SERVER_AUTH if server_ips else oid.ExtendedKeyUsageOID.CLIENT_AUTH
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
    leaf, key = _leaf(ca_key, ca_name, _name(common_name, organization), usage, sans)
    key_path = cert.with_suffix(".key")
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_key_pem(key))
    key_path.chmod(0o600)
    return key_path
