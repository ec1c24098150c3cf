import datetime
from concurrent import futures

import grpc
import pytest

from hsm_manager.gateway import pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc

NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca()


class _Health(hsm_pb2_grpc.HSMAgentServicer):
    """Only Health: these tests are about the TLS handshake, not about what an agent serves."""

    def Health(self, request: hsm_pb2.HealthRequest, context: grpc.ServicerContext) -> hsm_pb2.HealthResponse:
        return hsm_pb2.HealthResponse(status="ok")


@pytest.fixture(scope="module")
def server(ca: pki.KeyPair):  # type: ignore[no-untyped-def]
    leaf = pki.issue(ca, "hsm-agent-abc", client=False)
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    hsm_pb2_grpc.add_HSMAgentServicer_to_server(_Health(), grpc_server)
    credentials = grpc.ssl_server_credentials([(leaf.key, leaf.cert)], ca.cert, require_client_auth=True)
    port = grpc_server.add_secure_port("127.0.0.1:0", credentials)
    grpc_server.start()
    yield f"127.0.0.1:{port}"
    grpc_server.stop(grace=None)


def health(address: str, tls: channel.ClientTLS) -> str:
    with channel.open_channel(address, tls) as opened:
        return str(channel.agent_stub(opened).Health(hsm_pb2.HealthRequest(), timeout=5).status)


def test_leaf_names_the_agent_in_its_san(ca: pki.KeyPair) -> None:
    assert pki.subject_names(pki.issue(ca, "hsm-agent-abc", client=False).cert) == ["hsm-agent-abc"]


def test_manager_client_certificate_is_accepted_by_the_agent(ca: pki.KeyPair, server: str) -> None:
    client = pki.issue(ca, pki.CLIENT_NAME, client=True)
    assert health(server, channel.ClientTLS(ca.cert, client.cert, client.key, "hsm-agent-abc")) == "ok"


def test_agent_with_another_name_is_rejected(ca: pki.KeyPair, server: str) -> None:
    client = pki.issue(ca, pki.CLIENT_NAME, client=True)
    with pytest.raises(grpc.RpcError):
        health(server, channel.ClientTLS(ca.cert, client.cert, client.key, "hsm-agent-other"))


def test_client_from_another_ca_is_rejected(ca: pki.KeyPair, server: str) -> None:
    other = pki.new_ca()
    client = pki.issue(other, pki.CLIENT_NAME, client=True)
    with pytest.raises(grpc.RpcError):
        health(server, channel.ClientTLS(ca.cert, client.cert, client.key, "hsm-agent-abc"))


def test_fresh_leaf_needs_no_renewal(ca: pki.KeyPair) -> None:
    assert not pki.needs_renewal(pki.issue(ca, "a", client=False).cert, ca)


def test_leaf_near_expiry_needs_renewal(ca: pki.KeyPair) -> None:
    old = pki.issue(ca, "a", client=False, now=NOW - datetime.timedelta(days=70))
    assert pki.needs_renewal(old.cert, ca)


def test_leaf_of_another_ca_needs_renewal(ca: pki.KeyPair) -> None:
    assert pki.needs_renewal(pki.issue(pki.new_ca(), "a", client=False).cert, ca)


def test_garbage_needs_renewal(ca: pki.KeyPair) -> None:
    assert pki.needs_renewal(b"not a certificate", ca)
