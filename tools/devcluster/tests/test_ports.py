"""free_port: a port that binds, below the range the kernel takes outgoing connections' ports from."""

import socket

import pytest

from devcluster import ports


def test_a_free_port_can_be_bound_and_lies_below_the_outgoing_connections_range() -> None:
    low = ports.ephemeral_low()
    for _ in range(50):
        port = ports.free_port()
        assert max(1024, low - ports.SPAN) <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", ports.ephemeral_low() - 1))
        taken.listen()
        # Every pick but the last lands on the taken port.
        picks = iter([ports.ephemeral_low() - 1] * 5 + [ports.ephemeral_low() - 2])
        monkeypatch.setattr(ports.random, "randrange", lambda low, high: next(picks))
        assert ports.free_port() == ports.ephemeral_low() - 2
