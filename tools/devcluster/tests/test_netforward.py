"""netforward: its rules and command line, and the forwarder process against a throwaway network namespace."""

import contextlib
import dataclasses
import http
import ipaddress
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

import pytest

from devcluster import _netforward_main, hosthygiene, netforward, wait

NS_ADDRESS = "10.123.45.1"
ALLOWED = "10.123.45.0/24"
TRAILER = b"<eof seen>"

# Echoes what it reads; once the client half-closes, sends TRAILER and half-closes too. Seeing the trailer
# proves the client's EOF arrived and data still flowed back after it; the client's EOF proves ours did.
ECHO = r"""
import pathlib, socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 0))
server.listen()
tmp = pathlib.Path(sys.argv[2] + ".tmp")
tmp.write_text(str(server.getsockname()[1]))
tmp.rename(sys.argv[2])
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.sendall(TRAILER)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
while True:
    conn, _ = server.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
""".replace("TRAILER", repr(TRAILER))

# Sends a file, half-closes, writes everything received until EOF to another file.
CLIENT = r"""
import pathlib, socket, sys, threading
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
payload = pathlib.Path(sys.argv[3]).read_bytes()
def send():
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)
sender = threading.Thread(target=send)
sender.start()
chunks = []
while data := conn.recv(65536):
    chunks.append(data)
sender.join()
pathlib.Path(sys.argv[4]).write_bytes(b"".join(chunks))
"""


# -- Rules and command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["127.0.0.1:0", "[::1]:8080", "/run/netns/n1:10.0.0.1:80", "/run/netns/n1:[fd00::1]:443"]
)
def test_an_endpoint_reads_back_as_the_text_it_came_from(text: str) -> None:
    assert str(netforward.parse_endpoint(text)) == text


@pytest.mark.parametrize("text", ["10.0.0.1:80", "0.0.0.0:80", "[fd00::1]:80"])
def test_the_host_namespace_allows_only_loopback_endpoints(text: str) -> None:
    with pytest.raises(netforward.InvalidRule, match="loopback"):
        netforward.parse_endpoint(text)


@pytest.mark.parametrize("text", ["localhost:80", "/run/netns/n1:node1:80", "127.0.0.1", "n1:10.0.0.1:80"])
def test_names_and_malformed_endpoints_are_refused(text: str) -> None:
    with pytest.raises(netforward.InvalidRule):
        netforward.parse_endpoint(text)


def test_a_forward_needs_a_target_port() -> None:
    with pytest.raises(netforward.InvalidRule, match="needs a port"):
        netforward.parse_forward("127.0.0.1:0=/run/netns/n1:10.0.0.1:0")


def test_argv_renders_rules_the_command_line_reads_back(tmp_path: pathlib.Path) -> None:
    rules: list[netforward.Rule] = [
        netforward.parse_forward("127.0.0.1:0=/run/netns/n1:10.96.0.10:80"),
        netforward.parse_forward("/run/netns/n1:172.30.255.1:6443=127.0.0.1:6443"),
        netforward.ConnectProxy(tmp_path / "egress.sock", pathlib.Path("/run/netns/hub")),
    ]
    args = netforward.argv(rules, tmp_path / "ready.json", allow=["172.30.0.0/24", "10.244.0.0/16"])
    assert args[:3] == [sys.executable, "-m", "devcluster.netforward"]
    options = _netforward_main._parser().parse_args(args[3:])
    parsed: list[netforward.Rule] = [netforward.parse_forward(text) for text in options.forward]
    parsed += [netforward.parse_connect_proxy(text) for text in options.connect_proxy]
    assert parsed == rules
    assert options.allow == ["172.30.0.0/24", "10.244.0.0/16"]
    assert options.ready_file == tmp_path / "ready.json"


def test_a_connect_proxy_without_an_allowlist_is_refused(tmp_path: pathlib.Path) -> None:
    proxy = netforward.ConnectProxy(tmp_path / "egress.sock", pathlib.Path("/run/netns/hub"))
    with pytest.raises(netforward.InvalidRule, match="allowed network"):
        netforward.argv([proxy], tmp_path / "ready.json")


def test_connect_target_lets_an_allowed_address_through() -> None:
    head = b"CONNECT 10.123.45.1:10250 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    address, port = _netforward_main.connect_target(head, [ipaddress.ip_network(ALLOWED)])
    assert (str(address), port) == ("10.123.45.1", 10250)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"CONNECT 10.99.0.1:443 HTTP/1.1\r\n\r\n", http.HTTPStatus.FORBIDDEN),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n", http.HTTPStatus.FORBIDDEN),
        (b"CONNECT node1:10250 HTTP/1.1\r\n\r\n", http.HTTPStatus.FORBIDDEN),
        (b"GET http://10.123.45.1/ HTTP/1.1\r\n\r\n", http.HTTPStatus.METHOD_NOT_ALLOWED),
        (b"CONNECT 10.123.45.1 HTTP/1.1\r\n\r\n", http.HTTPStatus.BAD_REQUEST),
        (b"CONNECT 10.123.45.1:70000 HTTP/1.1\r\n\r\n", http.HTTPStatus.BAD_REQUEST),
        (b"hello\r\n\r\n", http.HTTPStatus.BAD_REQUEST),
    ],
)
def test_connect_target_refuses_what_it_must_not_tunnel(head: bytes, status: http.HTTPStatus) -> None:
    with pytest.raises(_netforward_main.Refused) as refused:
        _netforward_main.connect_target(head, [ipaddress.ip_network(ALLOWED)])
    assert refused.value.status == status


def test_a_listener_that_cannot_listen_fails_the_start(tmp_path: pathlib.Path) -> None:
    missing = pathlib.Path(f"/run/netns/nfwtest-missing-{secrets.token_hex(4)}")
    rule = netforward.Forward(
        netforward.Endpoint("10.123.45.1", 80, missing), netforward.Endpoint("127.0.0.1", 9)
    )
    done = subprocess.run(
        netforward.argv([rule], tmp_path / "ready.json"), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "event=listen_failed" in done.stderr
    assert not (tmp_path / "ready.json").exists()


# -- The process, against a real network namespace --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Namespace:
    name: str

    @property
    def path(self) -> pathlib.Path:
        return pathlib.Path("/run/netns") / self.name


@dataclasses.dataclass(frozen=True)
class Running:
    proc: "subprocess.Popen[bytes]"
    ready: dict[str, str]
    log: pathlib.Path


def _stop(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is missing")
    ns = Namespace(f"nfwtest-{os.getpid()}-{secrets.token_hex(3)}")
    # `ip netns add` turns /run/netns into a mount of itself the first time: put it back afterwards.
    netns_dir = hosthygiene.netns_dir_state()
    try:
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"cannot create a network namespace: {err.stderr.decode().strip()}")
    try:
        subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns.name, "addr", "add", f"{NS_ADDRESS}/32", "dev", "lo"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], check=False)
        hosthygiene.restore_netns_dir(netns_dir)


def _start_echo(
    prefix: list[str], host: str, port_file: pathlib.Path
) -> tuple["subprocess.Popen[bytes]", int]:
    proc = subprocess.Popen([*prefix, sys.executable, "-c", ECHO, host, str(port_file)])
    try:
        port = wait.until(lambda: proc.poll() is None and int(port_file.read_text()), 15, "the echo server")
    except BaseException:
        _stop(proc)
        raise
    return proc, port


@pytest.fixture(scope="module")
def ns_echo(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of an echo server on NS_ADDRESS inside the namespace."""
    port_file = tmp_path_factory.mktemp("ns-echo") / "port"
    # `ip netns exec` execs the command, so the PID is the server's own.
    proc, port = _start_echo(["ip", "netns", "exec", namespace.name], NS_ADDRESS, port_file)
    yield port
    _stop(proc)


@pytest.fixture(scope="module")
def host_echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of an echo server on the host's 127.0.0.1."""
    proc, port = _start_echo([], "127.0.0.1", tmp_path_factory.mktemp("host-echo") / "port")
    yield port
    _stop(proc)


@contextlib.contextmanager
def _forwarder(
    work: pathlib.Path, rules: Sequence[netforward.Rule], allow: Sequence[str] = ()
) -> Iterator[Running]:
    ready_file = work / "ready.json"
    log = work / "netforward.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            netforward.argv(rules, ready_file, allow),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> dict[str, str] | None:
            if proc.poll() is not None:
                raise AssertionError(f"netforward exited {proc.returncode}: {log.read_text()}")
            return netforward.read_ready(ready_file)

        yield Running(proc, wait.until(ready, 15, "the forwarder's ready file"), log)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def rules(
    namespace: Namespace, ns_echo: int, host_echo: int, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, netforward.Rule]:
    work = tmp_path_factory.getbasetemp()
    return {
        "into_ns": netforward.Forward(
            netforward.Endpoint("127.0.0.1", 0), netforward.Endpoint(NS_ADDRESS, ns_echo, namespace.path)
        ),
        "out_of_ns": netforward.Forward(
            netforward.Endpoint(NS_ADDRESS, 0, namespace.path), netforward.Endpoint("127.0.0.1", host_echo)
        ),
        "proxy": netforward.ConnectProxy(work / f"egress-{secrets.token_hex(3)}.sock", namespace.path),
    }


@pytest.fixture(scope="module")
def forwarder(
    rules: dict[str, netforward.Rule], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    with _forwarder(tmp_path_factory.mktemp("netforward"), list(rules.values()), [ALLOWED]) as running:
        yield running


def _read_to_eof(conn: socket.socket) -> bytes:
    chunks = []
    while data := conn.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def _exchange(conn: socket.socket, payload: bytes) -> bytes:
    """Send payload and half-close while reading everything until EOF (concurrently: no deadlock)."""
    conn.settimeout(60)

    def send() -> None:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    received = _read_to_eof(conn)
    sender.join()
    return received


def _host_port(forwarder: Running, rule: netforward.Rule) -> int:
    assert isinstance(rule, netforward.Forward)
    return netforward.listening(forwarder.ready, rule).port


def _proxy(forwarder: Running, rule: netforward.Rule, target: str) -> tuple[socket.socket, bytes]:
    """A connection to the proxy that sent CONNECT target, and the answer up to its blank line."""
    assert isinstance(rule, netforward.ConnectProxy)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(forwarder.ready[rule.spec()])
    conn.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    answer = b""
    # Byte by byte, like a client that must not read past the response (the API server checks for that).
    while not answer.endswith(b"\r\n\r\n"):
        byte = conn.recv(1)
        if not byte:
            break
        answer += byte
    return conn, answer


def test_a_loopback_listener_reaches_the_namespace_and_passes_half_closes_both_ways(
    forwarder: Running, rules: dict[str, netforward.Rule]
) -> None:
    with socket.create_connection(("127.0.0.1", _host_port(forwarder, rules["into_ns"])), timeout=30) as conn:
        assert _exchange(conn, b"ping") == b"ping" + TRAILER


def test_a_large_payload_round_trips_intact(forwarder: Running, rules: dict[str, netforward.Rule]) -> None:
    payload = os.urandom(8 << 20)
    with socket.create_connection(("127.0.0.1", _host_port(forwarder, rules["into_ns"])), timeout=30) as conn:
        assert _exchange(conn, payload) == payload + TRAILER


def test_a_namespace_listener_reaches_a_loopback_server_on_the_host(
    forwarder: Running, rules: dict[str, netforward.Rule], namespace: Namespace, tmp_path: pathlib.Path
) -> None:
    rule = rules["out_of_ns"]
    assert isinstance(rule, netforward.Forward)
    listening = netforward.listening(forwarder.ready, rule)
    assert (listening.netns, listening.host) == (namespace.path, NS_ADDRESS)
    payload = os.urandom(1 << 20)
    (tmp_path / "in").write_bytes(payload)
    client = [sys.executable, "-c", CLIENT, NS_ADDRESS, str(listening.port)]
    files = [str(tmp_path / "in"), str(tmp_path / "out")]
    subprocess.run(["ip", "netns", "exec", namespace.name, *client, *files], check=True, timeout=60)
    assert (tmp_path / "out").read_bytes() == payload + TRAILER


def test_the_connect_proxy_tunnels_to_an_allowed_target_inside_the_namespace(
    forwarder: Running, rules: dict[str, netforward.Rule], ns_echo: int
) -> None:
    conn, answer = _proxy(forwarder, rules["proxy"], f"{NS_ADDRESS}:{ns_echo}")
    with conn:
        assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"
        assert _exchange(conn, b"through the tunnel") == b"through the tunnel" + TRAILER


def test_the_connect_proxy_forbids_a_target_outside_the_allowlist(
    forwarder: Running, rules: dict[str, netforward.Rule], host_echo: int
) -> None:
    # The host's echo server is listening, so only the allowlist can stop this.
    conn, answer = _proxy(forwarder, rules["proxy"], f"127.0.0.1:{host_echo}")
    with conn:
        assert answer.startswith(b"HTTP/1.1 403 ")


def test_the_connect_proxy_answers_bad_gateway_for_a_closed_port(
    forwarder: Running, rules: dict[str, netforward.Rule]
) -> None:
    conn, answer = _proxy(forwarder, rules["proxy"], f"{NS_ADDRESS}:1")
    with conn:
        assert answer.startswith(b"HTTP/1.1 502 ")
        reason = _read_to_eof(conn)
    assert reason.strip(), "the 502 says why"
    assert f"{NS_ADDRESS}', 1)" in reason.decode()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def _listeners(tables: dict[str, str]) -> dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Listening sockets of /proc/net/tcp{,6} texts: inode -> local address."""
    found = {}
    for name, text in tables.items():
        for line in text.splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found[fields[9]] = ipaddress.IPv4Address(words) if name == "tcp" else ipaddress.IPv6Address(words)
    return found


def test_the_forwarder_listens_in_the_host_namespace_only_on_loopback(
    forwarder: Running, rules: dict[str, netforward.Rule], namespace: Namespace
) -> None:
    for rule in rules.values():
        if isinstance(rule, netforward.Forward) and rule.listen.netns is None:
            listening = netforward.listening(forwarder.ready, rule)
            assert listening.netns is None
            assert ipaddress.ip_address(listening.host).is_loopback, rule
    mine = _socket_inodes(forwarder.proc.pid)
    host = _listeners({name: pathlib.Path(f"/proc/net/{name}").read_text() for name in ("tcp", "tcp6")})
    in_ns = _listeners(
        {
            name: subprocess.run(
                ["ip", "netns", "exec", namespace.name, "cat", f"/proc/net/{name}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for name in ("tcp", "tcp6")
        }
    )
    host_listeners = [host[inode] for inode in mine if inode in host]
    assert host_listeners, "no listener of the forwarder found in the host namespace"
    assert all(address.is_loopback for address in host_listeners), host_listeners
    assert [in_ns[inode] for inode in mine if inode in in_ns] == [ipaddress.ip_address(NS_ADDRESS)]


def test_sigterm_closes_connections_removes_the_socket_and_exits_zero(
    namespace: Namespace, ns_echo: int, tmp_path: pathlib.Path
) -> None:
    proxy = netforward.ConnectProxy(tmp_path / "egress.sock", namespace.path)
    with _forwarder(tmp_path, [proxy], [ALLOWED]) as running:
        conn, answer = _proxy(running, proxy, f"{NS_ADDRESS}:{ns_echo}")
        with conn:
            assert answer.startswith(b"HTTP/1.1 200 ")
            running.proc.send_signal(signal.SIGTERM)
            assert running.proc.wait(10) == 0
            # The open tunnel was closed, not left hanging.
            assert conn.recv(1) == b""
        assert not proxy.socket.exists()
        assert not (tmp_path / "ready.json").exists()
