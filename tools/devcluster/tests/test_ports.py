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
        taken.bind(("127.0.0.1", ports.free_port()))
        taken.listen()
        in_use = taken.getsockname()[1]
        free = ports.free_port()
        # Every pick but the last lands on the port in use.
        picks = iter([in_use] * 5 + [free])
        monkeypatch.setattr(ports.random, "randrange", lambda low, high: next(picks))
        assert ports.free_port() == free
