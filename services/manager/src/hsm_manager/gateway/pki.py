"""The manager's CA and the certificates it issues: a serving leaf per agent, a client leaf for itself.

The CA lives in a Secret of the operator namespace, created once with create-or-get so two replicas
racing at start-up end up with the same CA (the loser reads the winner's).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hsm_manager import kube

CA_SECRET = "hsm-manager-ca"  # noqa: S105 - a Secret name
CLIENT_SECRET = "hsm-manager-client-tls"  # noqa: S105 - a Secret name
CLIENT_NAME = "hsm-manager"
CA_LIFETIME = datetime.timedelta(days=3650)
LEAF_LIFETIME = datetime.timedelta(days=90)
#: A leaf is renewed once less than this share of its lifetime is left.
RENEW_FRACTION = 1 / 3
PART_OF = "hsm-secrets-operator"
#: Labels of the Secrets and the ConfigMap written here, and the selector that finds them.
LABELS = {"app.kubernetes.io/component": "manager", "app.kubernetes.io/part-of": PART_OF}
SELECTOR = ",".join(f"{name}={value}" for name, value in LABELS.items())


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256: fast to generate (a fleet of agents renews in milliseconds) and accepted by gRPC's BoringSSL.
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_ca(now: datetime.datetime | None = None) -> KeyPair:
    """A fresh self-signed CA that may sign leaves only (path length 0)."""
    now = now or _now()
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hsm-secrets-operator CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def issue(
    ca: KeyPair,
    name: str,
    *,
    client: bool,
    now: datetime.datetime | None = None,
    lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> KeyPair:
    """A leaf for name (CN and the only DNS SAN), for serving (agents) or for clients (the manager)."""
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    return _issue(ca, [name], usage, now or _now(), lifetime)


def _issue(
    ca: KeyPair,
    names: list[str],
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
    lifetime: datetime.timedelta,
) -> KeyPair:
    """A leaf signed by ca whose DNS SANs are names (the first is also its CN), for one extended usage."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def needs_renewal(cert_pem: bytes, ca: KeyPair, now: datetime.datetime | None = None) -> bool:
    """True when the leaf is unreadable, signed by another CA, or has less than a third of its life left."""
    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        issuer = x509.load_pem_x509_certificate(ca.cert)
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any parse or signature failure (several exception types) means: issue again
        return True
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - now < lifetime * RENEW_FRACTION


def subject_names(cert_pem: bytes) -> list[str]:
    """The DNS SANs of a certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return list(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    )


# ------------------------------------------------------------ Secrets of the operator namespace


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def secret_data(secret: kube.Obj) -> dict[str, bytes]:
    """A Secret's data, decoded."""
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def _secret(namespace: str, name: str, secret_type: str, data: dict[str, bytes]) -> kube.Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": secret_type,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(LABELS),
        },
        "data": {k: _b64(v) for k, v in data.items()},
    }


def create_or_get(
    client: kube.Kube, namespace: str, name: str, secret_type: str, make: Callable[[], dict[str, bytes]]
) -> dict[str, bytes]:
    """The data of Secret name, created from make() if absent; a lost creation race returns the winner's."""
    try:
        return secret_data(client.get("Secret", namespace, name))
    except kube.NotFound:
        pass
    try:
        return secret_data(client.create(_secret(namespace, name, secret_type, make())))
    except kube.Conflict:
        return secret_data(client.get("Secret", namespace, name))


def ensure_ca(client: kube.Kube, namespace: str) -> KeyPair:
    """The CA of this installation, created on first use."""

    def make() -> dict[str, bytes]:
        ca = new_ca()
        return {"tls.crt": ca.cert, "tls.key": ca.key}

    data = create_or_get(client, namespace, CA_SECRET, "kubernetes.io/tls", make)
    return KeyPair(data["tls.crt"], data["tls.key"])


# ------------------------------------------------------------ the REST API's serving certificate

#: The Secret (in the operator namespace) the operator issues the API's serving leaf into.
API_TLS_SECRET = "hsm-api-tls"  # noqa: S105 - a Secret name
#: The ConfigMap (in the operator namespace) holding the CA that API clients verify the API with.
API_CA_CONFIGMAP = "hsm-api-ca"
API_CA_KEY = "ca.crt"


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names a client may use for a Service: short, namespaced, .svc and fully qualified."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def issue_serving(
    ca: KeyPair,
    names: list[str],
    *,
    now: datetime.datetime | None = None,
    lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> KeyPair:
    """A serving leaf whose DNS SANs are names (the first is also its CN)."""
    return _issue(ca, names, ExtendedKeyUsageOID.SERVER_AUTH, now or _now(), lifetime)


def ensure_serving(
    client: kube.Kube, namespace: str, secret_name: str, ca: KeyPair, names: list[str]
) -> bool:
    """Keep a serving leaf for names in Secret secret_name, issued again when it nears expiry, was signed by
    another CA, names other hosts or does not match its key; True when it was (re)issued.

    The Secret is replaced in place (with its resourceVersion): pods that mount it see the new files
    without a restart.
    """
    try:
        current: kube.Obj | None = client.get("Secret", namespace, secret_name)
    except kube.NotFound:
        current = None
    held = secret_data(current) if current is not None else {}
    cert = held.get("tls.crt", b"")
    if (
        cert
        and not needs_renewal(cert, ca)
        and sorted(subject_names(cert)) == sorted(names)
        and _pair(cert, held.get("tls.key", b""))
    ):
        return False
    leaf = issue_serving(ca, names)
    manifest = _secret(
        namespace,
        secret_name,
        "kubernetes.io/tls",
        {"tls.crt": leaf.cert, "tls.key": leaf.key, "ca.crt": ca.cert},
    )
    if current is None:
        client.create(manifest)
    else:
        manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        client.replace(manifest)
    return True


def _pair(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when key_pem is the private key of the certificate (a server cannot load them otherwise)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    return bool(key.public_key() == x509.load_pem_x509_certificate(cert_pem).public_key())


def publish_ca(client: kube.Kube, namespace: str, ca_pem: bytes, name: str = API_CA_CONFIGMAP) -> bool:
    """Keep ConfigMap name holding ca_pem under API_CA_KEY (the CAs clients verify a server with); True
    when it was written.

    A ConfigMap, not a Secret: a CA certificate is public, and clients granted this one ConfigMap need no
    read access to Secrets of the operator namespace (where the CA's key lives).
    """
    data = {API_CA_KEY: ca_pem.decode()}
    try:
        current: kube.Obj | None = client.get("ConfigMap", namespace, name)
    except kube.NotFound:
        current = None
    if current is not None and current.get("data") == data:
        return False
    manifest: kube.Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(LABELS),
        },
        "data": data,
    }
    if current is None:
        client.create(manifest)
    else:
        manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        client.replace(manifest)
    return True


# ------------------------------------------------------------ the metrics endpoints' serving certificate

# One serving leaf, in Secret constants.METRICS_TLS_SECRET, for every component's /metrics: the manager and
# the API mount it from the kustomize base, the operator's agents and discovery pods from their specs.

#: The ConfigMap (in the operator namespace) holding the CAs scrapers verify the metrics endpoints with. Not
#: API_CA_CONFIGMAP: that one holds a user's CA when the user supplies the API's certificate.
METRICS_CA_CONFIGMAP = "hsm-metrics-ca"
#: The Services scrapers find the components through (deploy/kustomize/base): one leaf names all four, so a
#: scraper configured with any one of their names as server name verifies every component. The leaf is of
#: the CA that signs the agents' gRPC leaves too, yet passes for no agent: the manager checks an agent's
#: name (``<device>-agent-<10 hex digits>``, no dots), which none of these names is, and the leaf serves
#: only (no client usage), so no agent accepts it from a client either.
METRICS_SERVICES = ("hsm-manager-metrics", "hsm-api-metrics", "hsm-agent-metrics", "hsm-discovery-metrics")


def metrics_names(namespace: str) -> list[str]:
    """The DNS SANs of the metrics leaf: every name of every metrics Service."""
    return [name for service in METRICS_SERVICES for name in service_names(service, namespace)]
