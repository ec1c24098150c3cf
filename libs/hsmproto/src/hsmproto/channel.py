"""Client channels to an agent: keepalive, message size, optional mutual TLS."""

from __future__ import annotations

import dataclasses

import grpc

from .v1 import hsm_pb2_grpc

#: A secret carries at most 1 MiB of data; base64-free protobuf framing adds little, so 8 MiB is ample.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Unary calls that exceed this are cut off by the client (seconds).
DEFAULT_TIMEOUT = 10.0
#: Longest wait between a channel's attempts to reach an agent that went away; gRPC adds up to 20 % jitter,
#: so every channel tries again within 1.2 times this of the agent's return. Until then calls through that
#: channel fail at once (an API worker answers 503 or 207), so it is short: an attempt is one TCP connect.
MAX_RECONNECT_BACKOFF_MS = 1_000


@dataclasses.dataclass(frozen=True)
class ClientTLS:
    """PEM material for mutual TLS with an agent."""

    ca_cert: bytes
    """CA that signed the agent's serving certificate."""
    client_cert: bytes
    """Certificate the client presents; agents require one."""
    client_key: bytes
    """Private key of client_cert."""
    server_name: str | None = None
    """Name expected in the agent's certificate (the agent's name); None = the target host."""


def channel_options(server_name: str | None = None) -> list[tuple[str, int | str]]:
    """Options shared by client channels: keepalive that survives idle watch streams, large messages."""
    options: list[tuple[str, int | str]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def server_options() -> list[tuple[str, int | str]]:
    """Options for agent servers that match what clients send (pings on idle streams are allowed)."""
    return [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]


def open_channel(target: str, tls: ClientTLS | None = None) -> grpc.Channel:
    """Open a channel to target ("host:port"), secured with mutual TLS when tls is given."""
    if tls is None:
        return grpc.insecure_channel(target, options=channel_options())
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert,
        private_key=tls.client_key,
        certificate_chain=tls.client_cert,
    )
    return grpc.secure_channel(target, credentials, options=channel_options(tls.server_name))


def agent_stub(channel: grpc.Channel) -> hsm_pb2_grpc.HSMAgentStub:
    """The HSMAgent stub of a channel."""
    return hsm_pb2_grpc.HSMAgentStub(channel)
