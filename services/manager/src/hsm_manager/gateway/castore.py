"""The CA Secret during a rotation, and what the agents' and clients' TLS Secrets should hold for it.

The CA Secret (pki.CA_SECRET) keeps the signing CA in tls.crt/tls.key as it always did; a rotation adds
next.crt/next.key (Trusting: trusted, not yet signing) or previous.crt (Issuing: trusted, no longer signing).
The phase is read from which keys are present, so the Secret alone says where a rotation stands.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import threading

from cryptography import x509

from hsm_manager import kube
from hsm_manager.decide import carotation

from . import pki

NEXT_CERT, NEXT_KEY, PREVIOUS_CERT = "next.crt", "next.key", "previous.crt"
#: When the clients' Secret was last written (RFC 3339): clients re-read it within their TTL of that.
WRITTEN_ANNOTATION = "hsm.j5t.io/written-at"


@dataclasses.dataclass(frozen=True)
class Authority:
    """The signing CA and, during a rotation, the other CA still or already trusted."""

    signing: pki.KeyPair
    next: pki.KeyPair | None = None
    previous: bytes | None = None
    """PEM certificate of the CA that signed before (its key is no longer needed)."""

    @property
    def phase(self) -> carotation.Phase:
        if self.next is not None:
            return carotation.Phase.TRUSTING
        if self.previous is not None:
            return carotation.Phase.ISSUING
        return carotation.Phase.STABLE

    @property
    def bundle(self) -> bytes:
        """Every CA to trust now, PEM, the signing one first."""
        others = [self.next.cert if self.next else b"", self.previous or b""]
        return b"".join(_pem_line(c) for c in [self.signing.cert, *others] if c)

    def begun(self) -> Authority:
        return Authority(self.signing, next=pki.new_ca())

    def promoted(self) -> Authority:
        if self.next is None:
            raise ValueError("no next CA to promote")
        return Authority(self.next, previous=self.signing.cert)

    def dropped(self) -> Authority:
        return Authority(self.signing)

    def certificates(self) -> list[tuple[str, x509.Certificate]]:
        """(role, certificate) of each CA: signing, next, previous."""
        found = [("signing", self.signing.cert), ("next", self.next.cert if self.next else b"")]
        found.append(("previous", self.previous or b""))
        return [(role, x509.load_pem_x509_certificate(pem)) for role, pem in found if pem]


def _pem_line(pem: bytes) -> bytes:
    return pem if pem.endswith(b"\n") else pem + b"\n"


def _from(data: dict[str, bytes]) -> Authority:
    following = (
        pki.KeyPair(data[NEXT_CERT], data[NEXT_KEY]) if NEXT_CERT in data and NEXT_KEY in data else None
    )
    return Authority(pki.KeyPair(data["tls.crt"], data["tls.key"]), following, data.get(PREVIOUS_CERT))


def _data(authority: Authority) -> dict[str, bytes]:
    data = {"tls.crt": authority.signing.cert, "tls.key": authority.signing.key}
    if authority.next is not None:
        data |= {NEXT_CERT: authority.next.cert, NEXT_KEY: authority.next.key}
    if authority.previous is not None:
        data[PREVIOUS_CERT] = authority.previous
    return data


def load(client: kube.Kube, namespace: str) -> Authority:
    """The installation's CA and rotation state, the CA created on first use."""
    pki.ensure_ca(client, namespace)
    return _from(pki.secret_data(client.get("Secret", namespace, pki.CA_SECRET)))


def save(client: kube.Kube, namespace: str, authority: Authority) -> None:
    """Write authority over what load() read (a concurrent writer makes this fail with Conflict)."""
    current = client.get("Secret", namespace, pki.CA_SECRET)
    current["data"] = encode(_data(authority))
    client.replace(current)


def encode(data: dict[str, bytes]) -> dict[str, str]:
    """A Secret's data field from raw values."""
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


def leaf_data(
    authority: Authority, name: str, current: dict[str, bytes], *, client: bool
) -> dict[str, bytes] | None:
    """What a leaf's Secret should hold under authority, or None when it already does.

    A leaf not signed by the signing CA (or near its end) is issued again; a valid one is kept and only its
    trust bundle (ca.crt) follows the phase.
    """
    cert = current.get("tls.crt", b"")
    if cert and not pki.needs_renewal(cert, authority.signing):
        if current.get("ca.crt") == authority.bundle:
            return None
        return {**current, "ca.crt": authority.bundle}
    leaf = pki.issue(authority.signing, pki.CLIENT_NAME if client else name, client=client)
    return {"tls.crt": leaf.cert, "tls.key": leaf.key, "ca.crt": authority.bundle}


def ensure_client(
    client: kube.Kube, namespace: str, authority: Authority, now: datetime.datetime
) -> datetime.datetime | None:
    """Bring the clients' Secret in line with authority (created if absent); returns when it was last written
    (None: unknown, written before this code)."""
    try:
        secret = client.get("Secret", namespace, pki.CLIENT_SECRET)
    except kube.NotFound:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": pki.CLIENT_SECRET,
                "namespace": namespace,
                "labels": dict(pki.LABELS),
            },
        }
    annotations = secret["metadata"].setdefault("annotations", {})
    wanted = leaf_data(authority, pki.CLIENT_NAME, pki.secret_data(secret), client=True)
    if wanted is None:
        written = annotations.get(WRITTEN_ANNOTATION)
        return datetime.datetime.fromisoformat(written) if written else None
    secret["data"] = encode(wanted)
    annotations[WRITTEN_ANNOTATION] = now.isoformat()
    if "resourceVersion" in secret["metadata"]:
        client.replace(secret)  # with its resourceVersion: a concurrent writer wins, ours is retried
    else:
        client.create(secret)  # a concurrent creator wins (Conflict), ours is retried
    return now


class Holder:
    """The current Authority, shared by the one rotation owner (which sets it) and the leaf issuers."""

    def __init__(self, authority: Authority) -> None:
        # Guards _current: the rotation thread swaps it while reconcile threads read it.
        self._lock = threading.Lock()
        self._current = authority

    def current(self) -> Authority:
        with self._lock:
            return self._current

    def set(self, authority: Authority) -> None:
        with self._lock:
            self._current = authority
