"""Free TCP ports on the loopback interface."""

import pathlib
import random
import socket

#: Where Linux takes the local ports of outgoing connections ("low high"), and its default.
EPHEMERAL_RANGE = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768
#: Ports are picked from this many below that range.
SPAN = 8192


def ephemeral_low() -> int:
    """The lowest port the kernel gives an outgoing connection."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, below the kernel's range for outgoing connections.

    The port is free only until someone binds it, and a server started with it binds it a little later. A
    port from the kernel's own pick (bind to 0) lies in the range outgoing connections take their local
    ports from, so any connection on the machine could take it meanwhile (an etcd once failed to start
    that way, "address already in use"); below that range only another explicit bind can.
    """
    high = ephemeral_low()
    low = max(1024, high - SPAN)
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {host} in {low}-{high - 1}")
