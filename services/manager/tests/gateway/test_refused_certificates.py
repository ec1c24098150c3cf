"""Real TLS handshakes with an agent serving a bad certificate: the client says what is wrong with it.

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

from hsm_manager.gateway import client, errors, pki
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
def _serving(ca: pki.KeyPair, leaf: pki.KeyPair) -> Iterator[client.GrpcAgentClient]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    hsm_pb2_grpc.add_HSMAgentServicer_to_server(_Answers(), server)
    credentials = grpc.ssl_server_credentials(
        [(leaf.key, leaf.cert)], root_certificates=ca.cert, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    ours = pki.issue(ca, pki.CLIENT_NAME, client=True)
    tls = channel.ClientTLS(ca.cert, ours.cert, ours.key, server_name=AGENT)
    try:
        with channel.open_channel(f"127.0.0.1:{port}", tls) as opened:
            yield client.GrpcAgentClient(AGENT, channel.agent_stub(opened), timeout=5)
    finally:
        server.stop(0)


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
