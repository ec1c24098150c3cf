"""Certificate, key and client CA swapped as the kubelet does (a ``..data`` symlink) reach a running agent."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import pathlib
import queue
import threading
from typing import Any

import grpc
import prometheus_client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import parser

from hsmproto import channel
from hsmproto.v1 import hsm_pb2

FILES = ("tls.crt", "tls.key", "ca.crt")


@dataclasses.dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, days: int = 1) -> tuple[bytes, bytes]:
        """A leaf for name, PEM certificate and key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def authority(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


class Mount:
    """A Secret volume as the kubelet writes it: timestamped directories behind a ``..data`` symlink."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.root.mkdir()
        self._generation = 0

    def path(self, name: str) -> str:
        return str(self.root / name)

    def publish(self, contents: dict[str, bytes]) -> None:
        """Write a new generation and swap ..data to it in one rename, as atomic_writer.go does."""
        self._generation += 1
        directory = self.root / f"..2026_12_02_{self._generation:04d}"
        directory.mkdir()
        for name, content in contents.items():
            (directory / name).write_bytes(content)
        staged = self.root / "..data_tmp"
        staged.symlink_to(directory.name)
        os.rename(staged, self.root / "..data")
        for name in contents:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


@dataclasses.dataclass(frozen=True)
class Setup:
    agent: Any
    mount: Mount
    old: Authority


@pytest.fixture
def reloading(softhsm, start_agent, tmp_path) -> Setup:  # type: ignore[no-untyped-def]
    old = authority("old-ca")
    mount = Mount(tmp_path / "tls")
    cert, key = old.issue("agent-a")
    mount.publish({"tls.crt": cert, "tls.key": key, "ca.crt": old.pem})
    agent = start_agent(
        softhsm,
        **{f"tls_{n}": mount.path(f) for n, f in zip(("cert", "key", "client_ca"), FILES, strict=True)},
    )
    return Setup(agent, mount, old)


def client_tls(trusted: bytes, signer: Authority) -> channel.ClientTLS:
    cert, key = signer.issue("manager")
    return channel.ClientTLS(ca_cert=trusted, client_cert=cert, client_key=key, server_name="agent-a")


def connected(port: int, tls: channel.ClientTLS) -> bool:
    """One call on a fresh channel: True when served, False when the handshake is refused."""
    with channel.open_channel(f"127.0.0.1:{port}", tls) as chan:
        try:
            return channel.agent_stub(chan).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5).connected
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False


def drain(call: Any, events: queue.Queue[str]) -> None:
    try:
        for event in call:
            events.put(event.path)
    except grpc.RpcError:
        pass  # CANCELLED when the test ends the stream


def rotate(setup: Setup, new: Authority, bundle: bytes) -> None:
    cert, key = new.issue("agent-a")
    setup.mount.publish({"tls.crt": cert, "tls.key": key, "ca.crt": bundle})


def metrics_text(agent: Any) -> str:
    """What the agent's metrics endpoint serves (its registry, as rendered for a scrape)."""
    return prometheus_client.generate_latest(agent.metrics.registry).decode()


def test_after_a_symlink_swap_a_client_trusting_only_the_new_ca_is_served(reloading, wait) -> None:
    new = authority("new-ca")
    assert not connected(reloading.agent.port, client_tls(new.pem, new))
    rotate(reloading, new, new.pem)
    wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)


def test_after_the_swap_a_client_of_the_dropped_ca_is_refused(reloading, wait) -> None:
    new = authority("new-ca")
    rotate(reloading, new, new.pem)
    wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)
    assert not connected(reloading.agent.port, client_tls(new.pem, reloading.old))


def test_a_bundle_of_both_cas_admits_clients_of_either(reloading, wait) -> None:
    new = authority("new-ca")
    rotate(reloading, new, reloading.old.pem + new.pem)
    wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)
    assert connected(reloading.agent.port, client_tls(new.pem, reloading.old))


def test_a_connection_open_before_the_swap_keeps_its_calls_and_watch_stream(reloading, wait) -> None:
    tls = client_tls(reloading.old.pem, reloading.old)
    new = authority("new-ca")
    with channel.open_channel(f"127.0.0.1:{reloading.agent.port}", tls) as chan:
        stub = channel.agent_stub(chan)
        assert stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5).connected
        call = stub.WatchSecrets(hsm_pb2.WatchSecretsRequest(prefix="", include_snapshot=False))
        events: queue.Queue[str] = queue.Queue()
        threading.Thread(target=drain, args=(call, events), daemon=True).start()
        rotate(reloading, new, new.pem)
        wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)
        # The old connection's handshake is done: its calls and its stream go on.
        stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path="a/b", secret_data=hsm_pb2.SecretData(data={"k": b"v"})),
            timeout=10,
        )
        assert events.get(timeout=10) == "a/b"
        call.cancel()


def test_a_key_that_does_not_match_the_certificate_keeps_the_previous_files_served(
    reloading, wait, caplog
) -> None:
    new = authority("new-ca")
    cert, _ = new.issue("agent-a")
    _, other_key = new.issue("agent-a")
    with caplog.at_level(logging.INFO, logger="hsm_agent.tlsreload"):
        reloading.mount.publish({"tls.crt": cert, "tls.key": other_key, "ca.crt": new.pem})
        # gRPC looks at the files at each handshake: this one finds them refused and is served the old ones.
        assert connected(reloading.agent.port, client_tls(reloading.old.pem, reloading.old))
        assert 'result="refused"} 1.0' in metrics_text(reloading.agent)
        assert not connected(reloading.agent.port, client_tls(new.pem, new))
    refused = [r for r in caplog.records if r.getMessage().startswith("tls reload refused")]
    assert [getattr(r, "reason", "") for r in refused] == ["the key does not match the certificate"]
    assert all(b"PRIVATE" not in r.getMessage().encode() for r in caplog.records)


def test_files_fixed_after_a_refusal_are_loaded(reloading, wait) -> None:
    new = authority("new-ca")
    reloading.mount.publish({"tls.crt": b"not a certificate", "tls.key": b"", "ca.crt": new.pem})
    assert connected(reloading.agent.port, client_tls(reloading.old.pem, reloading.old))
    assert 'result="refused"} 1.0' in metrics_text(reloading.agent)
    rotate(reloading, new, new.pem)
    wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)


def expiries(agent: Any) -> list[tuple[str, str, float]]:
    """(role, subject, notAfter) of each certificate the agent's metrics show."""
    families = parser.text_string_to_metric_families(metrics_text(agent))
    return sorted(
        (sample.labels["role"], sample.labels["subject"], sample.value)
        for family in families
        if family.name == "hsm_agent_certificate_expiry_timestamp_seconds"
        for sample in family.samples
    )


def test_metrics_show_the_expiry_of_the_served_certificate_and_of_each_client_ca(reloading, wait) -> None:
    new = authority("new-ca")
    old_leaf = x509.load_pem_x509_certificate(pathlib.Path(reloading.mount.path("tls.crt")).read_bytes())
    assert expiries(reloading.agent) == [
        ("client-ca", "CN=old-ca", reloading.old.cert.not_valid_after_utc.timestamp()),
        ("serving", "CN=agent-a", old_leaf.not_valid_after_utc.timestamp()),
    ]
    new_cert, new_key = new.issue("agent-a", days=7)
    reloading.mount.publish({"tls.crt": new_cert, "tls.key": new_key, "ca.crt": reloading.old.pem + new.pem})
    wait(lambda: connected(reloading.agent.port, client_tls(new.pem, new)), timeout=10)
    assert expiries(reloading.agent) == [
        ("client-ca", "CN=new-ca", new.cert.not_valid_after_utc.timestamp()),
        ("client-ca", "CN=old-ca", reloading.old.cert.not_valid_after_utc.timestamp()),
        ("serving", "CN=agent-a", x509.load_pem_x509_certificate(new_cert).not_valid_after_utc.timestamp()),
    ]
