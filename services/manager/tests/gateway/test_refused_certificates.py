"""Real TLS handshakes with an agent serving a bad certificate: the client says what is wrong with it, and
for an expired one since when (read by a second handshake that does not verify).

The words come from gRPC's handshake (BoringSSL's verify result); these tests pin them, so a grpcio that
words them differently fails here rather than turning a clear status into a bare "Unavailable".
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from cryptography import x509

from hsm_manager.gateway import client, endpoints, errors, peek, pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

AGENT = "hsm-agent-tls"
NOW = datetime.datetime.now(datetime.UTC)


class _Answers(hsm_pb2_grpc.HSMAgentServicer):
    def Health(self, request: hsm_pb2.HealthRequest, context: grpc.ServicerContext) -> hsm_pb2.HealthResponse:
        return hsm_pb2.HealthResponse(status="ok")

    def IsConnected(
        self, request: hsm_pb2.IsConnectedRequest, context: grpc.ServicerContext
    ) -> hsm_pb2.IsConnectedResponse:
        return hsm_pb2.IsConnectedResponse(connected=True)


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca()


@contextlib.contextmanager
def _agent(ca: pki.KeyPair, leaf: pki.KeyPair) -> Iterator[str]:
    """A gRPC server serving leaf and requiring a client leaf of ca, as agents do; yields its address."""
    server = grpc.server(futures.ThreadPoolExecutor(2))
    hsm_pb2_grpc.add_HSMAgentServicer_to_server(_Answers(), server)
    credentials = grpc.ssl_server_credentials(
        [(leaf.key, leaf.cert)], root_certificates=ca.cert, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def _ours(ca: pki.KeyPair) -> channel.ClientTLS:
    ours = pki.issue(ca, pki.CLIENT_NAME, client=True)
    return channel.ClientTLS(ca.cert, ours.cert, ours.key, server_name=AGENT)


@contextlib.contextmanager
def _serving(ca: pki.KeyPair, leaf: pki.KeyPair) -> Iterator[client.GrpcAgentClient]:
    with _agent(ca, leaf) as address, channel.open_channel(address, _ours(ca)) as opened:
        yield client.GrpcAgentClient(AGENT, channel.agent_stub(opened), timeout=5)


def _expired(ca: pki.KeyPair) -> pki.KeyPair:
    return pki.issue(
        ca, AGENT, client=False, now=NOW - datetime.timedelta(days=2), lifetime=datetime.timedelta(days=1)
    )


def _not_after(leaf: pki.KeyPair) -> datetime.datetime:
    return x509.load_pem_x509_certificate(leaf.cert).not_valid_after_utc


def _refusal(ca: pki.KeyPair, leaf: pki.KeyPair) -> errors.AgentCallError:
    with _serving(ca, leaf) as agent, pytest.raises(errors.AgentCallError) as raised:
        agent.health()
    return raised.value


def test_a_leaf_of_our_ca_is_served(ca: pki.KeyPair) -> None:
    with _serving(ca, pki.issue(ca, AGENT, client=False)) as agent:
        assert agent.health().connected


def test_a_leaf_of_another_ca_is_refused_as_not_signed_by_ours(ca: pki.KeyPair) -> None:
    refused = _refusal(ca, pki.issue(pki.new_ca(), AGENT, client=False))
    assert isinstance(refused, errors.Untrusted)
    assert refused.message == "its TLS certificate is not signed by the manager's CA (Secret hsm-manager-ca)"


def test_an_expired_leaf_is_refused_as_expired(ca: pki.KeyPair) -> None:
    old = pki.issue(
        ca, AGENT, client=False, now=NOW - datetime.timedelta(days=2), lifetime=datetime.timedelta(days=1)
    )
    refused = _refusal(ca, old)
    assert isinstance(refused, errors.Untrusted)
    assert refused.message == "its TLS certificate has expired"


def test_a_leaf_for_another_agent_is_refused_as_not_issued_for_this_one(ca: pki.KeyPair) -> None:
    refused = _refusal(ca, pki.issue(ca, "hsm-agent-other", client=False))
    assert isinstance(refused, errors.Untrusted)
    assert refused.message == f"its TLS certificate is not issued for {AGENT}"


def test_an_agent_refused_as_expired_is_said_to_have_expired_on_its_certificates_date(
    ca: pki.KeyPair,
) -> None:
    old = _expired(ca)
    with _agent(ca, old) as address:
        endpoint = endpoints.AgentEndpoint("hsm", "ns", AGENT, "", "n1", address)
        directory = endpoints.StaticDirectory([endpoint], tls=_ours(ca), timeout=5)
        try:
            with pytest.raises(errors.Untrusted) as raised:
                directory.client(endpoint).health()
        finally:
            directory.close()
    expected = f"its TLS certificate has expired (on {_not_after(old):%Y-%m-%d %H:%M:%S} UTC)"
    assert (raised.value.message, raised.value.expired) == (expected, True)


def test_a_watch_refused_as_expired_says_when_too(ca: pki.KeyPair) -> None:
    old = _expired(ca)
    with _agent(ca, old) as address:
        endpoint = endpoints.AgentEndpoint("hsm", "ns", AGENT, "", "n1", address)
        directory = endpoints.StaticDirectory([endpoint], tls=_ours(ca), timeout=5)
        try:
            with pytest.raises(errors.Untrusted) as raised:
                list(directory.client(endpoint).watch())
        finally:
            directory.close()
    assert raised.value.message.endswith(f"(on {_not_after(old):%Y-%m-%d %H:%M:%S} UTC)")


def test_the_served_certificate_is_read_even_when_the_agent_does_not_accept_our_leaf(ca: pki.KeyPair) -> None:
    old = _expired(ca)
    with _agent(ca, old) as address:
        assert peek.not_after(address, _ours(pki.new_ca())) == _not_after(old)


def test_nothing_listening_gives_no_date(ca: pki.KeyPair) -> None:
    with _agent(ca, _expired(ca)) as address:
        pass
    assert peek.not_after(address, _ours(ca), timeout=1) is None


def test_one_reading_serves_the_refusals_of_a_burst_and_a_later_one_reads_again(ca: pki.KeyPair) -> None:
    now = [0.0]
    old = _expired(ca)
    with _agent(ca, old) as address:
        expiry = peek.Expiry(address, _ours(ca), clock=lambda: now[0])
        assert expiry() == _not_after(old)
    now[0] = peek.TTL - 1
    assert expiry() == _not_after(old)
    now[0] = peek.TTL
    assert expiry() is None
