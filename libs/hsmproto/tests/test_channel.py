from typing import Any

import grpc
import pytest

from hsmproto import channel
from hsmproto.v1 import hsm_pb2

MIB = 1024 * 1024


def test_plain_channel_calls_the_server(plain_server: str) -> None:
    with channel.open_channel(plain_server) as ch:
        reply = channel.agent_stub(ch).Health(hsm_pb2.HealthRequest(), timeout=channel.DEFAULT_TIMEOUT)
    assert reply.status == "ok"


def test_messages_of_four_mebibytes_pass(plain_server: str) -> None:
    request = hsm_pb2.WriteSecretRequest(
        path="ns/big", secret_data=hsm_pb2.SecretData(data={"k": b"x" * 4 * MIB})
    )
    with channel.open_channel(plain_server) as ch:
        reply = channel.agent_stub(ch).WriteSecret(request, timeout=channel.DEFAULT_TIMEOUT)
    assert reply.version == 4 * MIB


def test_mutual_tls_with_the_agents_name(mtls_server: str, pki: Any) -> None:
    tls = channel.ClientTLS(pki.ca, pki.client.cert, pki.client.key, server_name="agent-a")
    with channel.open_channel(mtls_server, tls) as ch:
        reply = channel.agent_stub(ch).Health(hsm_pb2.HealthRequest(), timeout=channel.DEFAULT_TIMEOUT)
    assert reply.status == "ok"


def test_a_wrong_server_name_is_refused(mtls_server: str, pki: Any) -> None:
    tls = channel.ClientTLS(pki.ca, pki.client.cert, pki.client.key, server_name="agent-b")
    with channel.open_channel(mtls_server, tls) as ch, pytest.raises(grpc.RpcError) as caught:
        channel.agent_stub(ch).Health(hsm_pb2.HealthRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_from_another_ca_is_refused(mtls_server: str, pki: Any) -> None:
    tls = channel.ClientTLS(pki.ca, pki.stranger.cert, pki.stranger.key, server_name="agent-a")
    with channel.open_channel(mtls_server, tls) as ch, pytest.raises(grpc.RpcError) as caught:
        channel.agent_stub(ch).Health(hsm_pb2.HealthRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_channel_options_enable_keepalive_and_large_messages() -> None:
    options = dict(channel.channel_options())
    assert options["grpc.keepalive_time_ms"] > 0
    assert options["grpc.max_receive_message_length"] >= 4 * MIB
