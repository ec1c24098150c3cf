"""Mutual TLS on the gRPC port, the command line, and SIGTERM shutdown of the real process."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm_agent import __main__ as cli
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

from . import pinleak


def issue(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@pytest.fixture
def tls_agent(softhsm, start_agent):  # type: ignore[no-untyped-def]
    ca = issue("test-ca")
    server_cert, server_key = pem(*issue("agent-a", ca))
    ca_pem = pem(*ca)[0]
    files = {"tls_cert": server_cert, "tls_key": server_key, "tls_client_ca": ca_pem}
    for name, content in files.items():
        (softhsm.root / name).write_bytes(content)
    service = start_agent(softhsm, **{name: str(softhsm.root / name) for name in files})
    return service, ca, ca_pem


def test_client_with_a_certificate_from_the_ca_is_served(tls_agent) -> None:
    service, ca, ca_pem = tls_agent
    client_cert, client_key = pem(*issue("manager", ca))
    tls = channel.ClientTLS(
        ca_cert=ca_pem, client_cert=client_cert, client_key=client_key, server_name="agent-a"
    )
    with channel.open_channel(f"127.0.0.1:{service.port}", tls) as chan:
        assert channel.agent_stub(chan).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=10).connected


def test_client_with_a_certificate_from_another_ca_is_refused(tls_agent) -> None:
    service, _, ca_pem = tls_agent
    client_cert, client_key = pem(*issue("intruder", issue("other-ca")))
    tls = channel.ClientTLS(
        ca_cert=ca_pem, client_cert=client_cert, client_key=client_key, server_name="agent-a"
    )
    with (
        channel.open_channel(f"127.0.0.1:{service.port}", tls) as chan,
        pytest.raises(grpc.RpcError) as caught,
    ):
        channel.agent_stub(chan).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_listen_defaults_to_the_pod_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    config = cli.config_from(cli.build_parser().parse_args(["--pin-file", "/p", "--token-label", "t"]))
    assert config.listen == "10.1.2.3:9090"


def test_token_label_and_slot_are_exclusive() -> None:
    args = cli.build_parser().parse_args(["--pin-file", "/p", "--token-label", "t", "--slot-id", "1"])
    with pytest.raises(ValueError, match="exactly one"):
        cli.config_from(args)


def test_serial_alone_picks_the_token() -> None:
    args = cli.build_parser().parse_args(["--pin-file", "/p", "--serial", "abc123"])
    store = cli.config_from(args).store
    assert (store.token_label, store.slot_id, store.serial) == (None, None, "abc123")


def test_with_its_own_pcscd_the_agent_serves_the_one_token_present_whatever_its_serial() -> None:
    # The pod's pcscd sees only the pod's device, and OpenSC reads a card's serial from the card, not USB.
    args = cli.build_parser().parse_args(
        ["--pin-file", "/p", "--serial", "usb-serial", "--pkcs11-library", "/usr/lib/opensc-pkcs11.so"]
    )
    store = cli.config_from(args).store
    assert (store.token_label, store.slot_id, store.serial) == (None, None, None)


def test_a_token_must_be_named_somehow() -> None:
    with pytest.raises(ValueError, match="--serial"):
        cli.config_from(cli.build_parser().parse_args(["--pin-file", "/p"]))


def test_opensc_module_turns_on_pcscd_supervision() -> None:
    args = cli.build_parser().parse_args(
        ["--pin-file", "/p", "--token-label", "t", "--pkcs11-library", "/usr/lib/opensc-pkcs11.so"]
    )
    assert cli.config_from(args).pcscd


def test_sigterm_stops_the_agent_process_cleanly(softhsm, wait) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hsm_agent",
            "--token-label",
            softhsm.label,
            "--pin-file",
            str(softhsm.pin_file),
            "--listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen=",
            "--log-level",
            "info",
        ],
        env=softhsm.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines = iter(process.stderr.readline, "")
    wait(lambda: '"state":"ready"' in next(lines), timeout=30)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert not pinleak.shows("1234", process.stderr.read())  # the PIN never reaches the logs
