"""Rules for the netforward process, which carries TCP between the host's loopback and network namespaces.

Node, pod and Service addresses exist only inside the cluster's network namespaces, and no process in the
host's namespace may connect to anything but loopback. One forwarder process per cluster bridges the two:

- a *forward* listens on ``[NETNS:]HOST:PORT`` and connects each accepted connection to another
  ``[NETNS:]HOST:PORT`` (a socket belongs to the namespace it was created in, so one process can listen in
  one namespace and connect in another);
- a *connect proxy* listens on a Unix socket for HTTP ``CONNECT host:port`` requests, the way the API
  server's egress selector (``proxyProtocol: HTTPConnect``, ``transport: uds``) dials kubelets and pods,
  and connects from inside a namespace to targets in an allowlist of networks.

This module is the caller's side: the rules, the command line that runs them
(``python -m devcluster.netforward``) and the ready file the process writes once it listens.
"""

import dataclasses
import ipaddress
import json
import pathlib
import sys
from collections.abc import Sequence

MODULE = "devcluster.netforward"


class InvalidRule(ValueError):
    """A rule, endpoint or network that the forwarder refuses to run."""


def _check_netns(netns: pathlib.Path) -> None:
    # ":" and "=" separate the parts of a rule on the command line, so a path holding one could not be parsed.
    text = str(netns)
    if not netns.is_absolute() or ":" in text or "=" in text:
        raise InvalidRule(f"netns {text!r} must be an absolute path without ':' or '='")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A TCP address (an IP literal, never a name) in a network namespace.

    In the host's own namespace (``netns`` None) only loopback addresses are accepted: the forwarder must
    never listen on or connect to anything else there.
    """

    host: str
    port: int
    """0 only where the forwarder listens: the kernel picks the port, the ready file tells it."""
    netns: pathlib.Path | None = None
    """A network namespace file (``/run/netns/NAME``); None for the forwarder's own namespace."""

    def __post_init__(self) -> None:
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            raise InvalidRule(f"host {self.host!r} is not an IP address") from None
        if str(address) != self.host:
            raise InvalidRule(f"host {self.host!r} is not in canonical form ({address})")
        if not 0 <= self.port <= 65535:
            raise InvalidRule(f"port {self.port} out of range")
        if self.netns is None and not address.is_loopback:
            raise InvalidRule(
                f"{self.host} is not a loopback address, the only kind allowed in the host netns"
            )
        if self.netns is not None:
            _check_netns(self.netns)

    @property
    def ipv6(self) -> bool:
        """Whether the address is IPv6."""
        return ":" in self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.ipv6 else self.host
        prefix = f"{self.netns}:" if self.netns is not None else ""
        return f"{prefix}{host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class Forward:
    """Listen on ``listen``; connect every accepted connection to ``target`` and splice the two."""

    listen: Endpoint
    target: Endpoint

    def __post_init__(self) -> None:
        if self.target.port == 0:
            raise InvalidRule(f"target {self.target} needs a port")

    def spec(self) -> str:
        """The rule as the command line gives it, and its key in the ready file."""
        return f"{self.listen}={self.target}"


@dataclasses.dataclass(frozen=True)
class ConnectProxy:
    """Answer HTTP CONNECT on the Unix socket ``socket`` by connecting from inside ``netns``."""

    socket: pathlib.Path
    netns: pathlib.Path

    def __post_init__(self) -> None:
        if "=" in str(self.socket):
            raise InvalidRule(f"socket path {self.socket} must not contain '='")
        _check_netns(self.netns)

    def spec(self) -> str:
        """The rule as the command line gives it, and its key in the ready file."""
        return f"{self.socket}={self.netns}"


Rule = Forward | ConnectProxy
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_endpoint(text: str) -> Endpoint:
    """``[NETNS:]HOST:PORT`` (IPv6 hosts in brackets) as an Endpoint."""
    rest, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise InvalidRule(f"{text!r}: expected [NETNS:]HOST:PORT")
    if rest.endswith("]"):
        prefix, bracket, host = rest[:-1].rpartition("[")
        if not bracket or (prefix and not prefix.endswith(":")):
            raise InvalidRule(f"{text!r}: expected [NETNS:][IPV6]:PORT")
        netns_text = prefix[:-1]
    else:
        netns_text, _, host = rest.rpartition(":")
    netns = pathlib.Path(netns_text) if netns_text else None
    return Endpoint(host=host, port=int(port_text), netns=netns)


def parse_forward(text: str) -> Forward:
    """``LISTEN=TARGET`` (two endpoints) as a Forward."""
    listen, sep, target = text.partition("=")
    if not sep:
        raise InvalidRule(f"{text!r}: expected [NETNS:]HOST:PORT=[NETNS:]HOST:PORT")
    return Forward(parse_endpoint(listen), parse_endpoint(target))


def parse_connect_proxy(text: str) -> ConnectProxy:
    """``UDS_PATH=NETNS`` as a ConnectProxy."""
    socket, sep, netns = text.rpartition("=")
    if not sep or not socket or not netns:
        raise InvalidRule(f"{text!r}: expected UDS_PATH=NETNS")
    return ConnectProxy(pathlib.Path(socket), pathlib.Path(netns))


def parse_network(text: str) -> Network:
    """A CIDR for the connect proxies' allowlist (host bits must be zero)."""
    try:
        return ipaddress.ip_network(text)
    except ValueError as err:
        raise InvalidRule(f"{text!r}: {err}") from None


def argv(rules: Sequence[Rule], ready_file: pathlib.Path, allow: Sequence[str] = ()) -> list[str]:
    """The command line of a forwarder process serving ``rules``.

    ``allow`` is the allowlist (CIDRs) shared by every connect proxy; a connect proxy without one would
    refuse everything, so that is an error here rather than a surprise later.
    """
    networks = [parse_network(cidr) for cidr in allow]
    if any(isinstance(rule, ConnectProxy) for rule in rules) and not networks:
        raise InvalidRule("a connect proxy needs at least one allowed network")
    args = [sys.executable, "-m", MODULE, "--ready-file", str(ready_file)]
    for rule in rules:
        option = "--forward" if isinstance(rule, Forward) else "--connect-proxy"
        args += [option, rule.spec()]
    for network in networks:
        args += ["--allow", str(network)]
    return args


def read_ready(path: pathlib.Path) -> dict[str, str]:
    """The ready file: each rule's spec mapped to where it listens (an endpoint, or the socket path).

    Raises FileNotFoundError until the process listens on every rule (the file appears atomically), and
    again once it has exited cleanly (it removes the file, and a stale one when it starts).
    """
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        raise ValueError(f"{path}: not a mapping of strings")
    return data


def listening(ready: dict[str, str], rule: Forward) -> Endpoint:
    """Where ``rule`` listens according to the ready file (the port resolved when the rule gave 0)."""
    return parse_endpoint(ready[rule.spec()])


if __name__ == "__main__":
    # Run from the imported module rather than this __main__ copy, so the server sees one set of rule classes.
    from devcluster import _netforward_main

    sys.exit(_netforward_main.main())
