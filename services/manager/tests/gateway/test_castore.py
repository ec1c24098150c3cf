"""The CA Secret through a rotation, and the leaf Secrets that follow it (in-memory API server)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from hsm_manager.decide import carotation
from hsm_manager.gateway import castore, pki

from .. import fakes

NS = "hsm-system"
NOW = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)


def cas(bundle: bytes) -> list[str]:
    return [
        c.subject.rfc4514_string() + c.serial_number.to_bytes(20).hex()
        for c in x509.load_pem_x509_certificates(bundle)
    ]


def ident(pem: bytes) -> str:
    return cas(pem)[0]


@pytest.fixture
def cluster() -> fakes.FakeKube:
    return fakes.FakeKube()


def test_a_fresh_installation_is_stable_with_one_ca(cluster: fakes.FakeKube) -> None:
    authority = castore.load(cluster, NS)
    assert authority.phase is carotation.Phase.STABLE
    assert cas(authority.bundle) == [ident(authority.signing.cert)]


def test_each_phase_is_read_back_from_the_secret_with_the_cas_it_trusts(cluster: fakes.FakeKube) -> None:
    stable = castore.load(cluster, NS)
    trusting = stable.begun()
    castore.save(cluster, NS, trusting)
    read = castore.load(cluster, NS)
    assert read == trusting
    assert read.phase is carotation.Phase.TRUSTING
    assert read.signing == stable.signing
    assert trusting.next is not None
    assert cas(read.bundle) == [ident(stable.signing.cert), ident(trusting.next.cert)]
    issuing = read.promoted()
    castore.save(cluster, NS, issuing)
    read = castore.load(cluster, NS)
    assert (read.phase, read.signing) == (carotation.Phase.ISSUING, trusting.next)
    assert cas(read.bundle) == [ident(trusting.next.cert), ident(stable.signing.cert)]
    castore.save(cluster, NS, read.dropped())
    read = castore.load(cluster, NS)
    assert (read.phase, read.signing) == (carotation.Phase.STABLE, trusting.next)
    assert cas(read.bundle) == [ident(trusting.next.cert)]


def test_a_valid_leaf_keeps_its_key_and_only_its_bundle_follows_the_phase() -> None:
    stable = castore.Authority(pki.new_ca())
    held = castore.leaf_data(stable, "agent-a", {}, client=False)
    assert held is not None
    assert castore.leaf_data(stable, "agent-a", held, client=False) is None
    trusting = stable.begun()
    following = castore.leaf_data(trusting, "agent-a", held, client=False)
    assert following == {**held, "ca.crt": trusting.bundle}


def test_promotion_reissues_a_leaf_from_the_new_ca() -> None:
    trusting = castore.Authority(pki.new_ca()).begun()
    held = castore.leaf_data(trusting, "agent-a", {}, client=False)
    assert held is not None
    issuing = trusting.promoted()
    renewed = castore.leaf_data(issuing, "agent-a", held, client=False)
    assert renewed is not None
    assert renewed["tls.key"] != held["tls.key"]
    assert not pki.needs_renewal(renewed["tls.crt"], issuing.signing)
    assert pki.subject_names(renewed["tls.crt"]) == ["agent-a"]


def test_the_clients_secret_records_when_it_changed(cluster: fakes.FakeKube) -> None:
    stable = castore.load(cluster, NS)
    assert castore.ensure_client(cluster, NS, stable, NOW) == NOW
    later = NOW + datetime.timedelta(minutes=5)
    assert castore.ensure_client(cluster, NS, stable, later) == NOW
    assert castore.ensure_client(cluster, NS, stable.begun(), later) == later
