"""One handshake and call to an agent, to observe which certificates it serves and accepts."""

from __future__ import annotations

import grpc

from hsmproto import channel
from hsmproto.v1 import hsm_pb2

from . import endpoints, pki


def served(endpoint: endpoints.AgentEndpoint, trusted: bytes, presented: pki.KeyPair, timeout: float) -> bool:
    """True when the agent answers a call: it served a certificate trusted (PEM CAs) accepts, and took ours.

    A fresh channel each time: a reused one would answer over a connection made with older certificates.
    """
    tls = channel.ClientTLS(trusted, presented.cert, presented.key, server_name=endpoint.name)
    with channel.open_channel(endpoint.address, tls) as chan:
        try:
            channel.agent_stub(chan).IsConnected(hsm_pb2.IsConnectedRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return True
