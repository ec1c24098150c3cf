"""The netforward process: serves forwards and connect proxies until SIGTERM/SIGINT (see ``netforward``)."""

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import http
import ipaddress
import json
import logging
import os
import pathlib
import signal
import socket
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

from . import netforward

log = logging.getLogger("devcluster.netforward")

_CLONE_NEWNET = 0x40000000
_CHUNK = 256 * 1024
_CONNECT_TIMEOUT = 10.0
_HEADER_TIMEOUT = 30.0
_HEADER_LIMIT = 64 * 1024
"""Bound on a CONNECT request's header block (it is also the stream buffer, so not much smaller)."""
_ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespaces:
    """Creates sockets in network namespaces from the calling thread (only the event loop's calls it).

    A socket belongs to the namespace its creating thread is in, and keeps it; the thread goes back to its
    own namespace right after, so everything else it does (and every socket created plainly) stays there.
    """

    def __init__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def socket(self, netns: pathlib.Path | None, family: int) -> socket.socket:
        """A non-blocking TCP socket created inside ``netns`` (None: this thread's own namespace)."""
        if netns is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
        else:
            # Opened per socket, so a namespace recreated at the same path is picked up.
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                finally:
                    self._go_home()
            finally:
                os.close(fd)
        sock.setblocking(False)
        return sock

    def _go_home(self) -> None:
        try:
            _setns(self._home)
        except OSError as err:
            # Staying in the wrong namespace would put the next host socket there: stop everything instead.
            log.critical("event=setns_home_failed error=%s", err)
            os._exit(70)

    def close(self) -> None:
        """Release the handle on the home namespace."""
        os.close(self._home)


class Refused(Exception):
    """A CONNECT request answered with an HTTP error instead of a tunnel."""

    def __init__(self, status: http.HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def connect_target(
    head: bytes, allow: Sequence[netforward.Network]
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """The address and port a CONNECT request's header block asks for, if the allowlist lets it through.

    Names are refused rather than resolved: resolving would use the host's DNS, outside any namespace.
    """
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused(http.HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, _ = parts
    if method != "CONNECT":
        raise Refused(http.HTTPStatus.METHOD_NOT_ALLOWED, "only CONNECT is served")
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise Refused(http.HTTPStatus.BAD_REQUEST, "target must be HOST:PORT")
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise Refused(http.HTTPStatus.FORBIDDEN, "target must be an IP address") from None
    if not any(address in network for network in allow):
        raise Refused(http.HTTPStatus.FORBIDDEN, "target not in an allowed network")
    return address, int(port_text)


def refusal(status: http.HTTPStatus, reason: str) -> bytes:
    """The whole HTTP response for a refused or failed CONNECT."""
    body = f"{reason}\n".encode()
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()
    # Pass the half-close on: the other side may still have data to send back.
    if writer.can_write_eof():
        writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _splice(left: Stream, right: Stream) -> None:
    try:
        async with asyncio.TaskGroup() as pipes:
            pipes.create_task(_pipe(left[0], right[1]))
            pipes.create_task(_pipe(right[0], left[1]))
    except* OSError:
        pass  # A reset on either side ends the tunnel; closing tells the other side.
    finally:
        await _close(left[1])
        await _close(right[1])


class Forwarder:
    """Every listener of one process and the connections they accepted."""

    def __init__(self, allow: Sequence[netforward.Network]) -> None:
        self._allow = tuple(allow)
        self._namespaces = Namespaces()
        self._servers: list[asyncio.Server] = []
        self._sockets: list[tuple[pathlib.Path, int]] = []
        self._connections: set[asyncio.Task[Any]] = set()

    async def listen(self, rule: netforward.Rule) -> str:
        """Start listening for ``rule``; return the address it listens on (for the ready file)."""
        if isinstance(rule, netforward.ConnectProxy):
            return await self._listen_connect_proxy(rule)
        endpoint = rule.listen
        sock = self._namespaces.socket(endpoint.netns, _family(endpoint))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((endpoint.host, endpoint.port))
            sock.listen(128)

            async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self._tracked(self._forward(rule, (reader, writer)))

            self._servers.append(await asyncio.start_server(accepted, sock=sock, limit=_HEADER_LIMIT))
        except BaseException:
            sock.close()
            raise
        port: int = sock.getsockname()[1]
        return str(dataclasses.replace(endpoint, port=port))

    async def _listen_connect_proxy(self, rule: netforward.ConnectProxy) -> str:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._tracked(self._connect(rule, (reader, writer)))

        # A path socket lives in the file system, not in a netns: the host's API server reaches it.
        server = await asyncio.start_unix_server(accepted, path=rule.socket, limit=_HEADER_LIMIT)
        self._servers.append(server)
        # Whoever can connect reaches the cluster network; keep that to this user.
        os.chmod(rule.socket, 0o600)
        self._sockets.append((rule.socket, os.stat(rule.socket).st_ino))
        return str(rule.socket)

    async def _tracked(self, handler: Awaitable[None]) -> None:
        # asyncio runs each connection's handler in a task of its own; close() cancels them through this set.
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await handler
        finally:
            self._connections.discard(task)

    async def _dial(self, target: netforward.Endpoint) -> Stream:
        sock = self._namespaces.socket(target.netns, _family(target))
        try:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (target.host, target.port)), _CONNECT_TIMEOUT)
            return await asyncio.open_connection(sock=sock, limit=_HEADER_LIMIT)
        except BaseException:
            sock.close()
            raise

    async def _forward(self, rule: netforward.Forward, client: Stream) -> None:
        try:
            upstream = await self._dial(rule.target)
        except (OSError, TimeoutError) as err:
            log.warning("event=connect_failed rule=%s error=%s", rule.spec(), _describe(err))
            await _close(client[1])
            return
        await _splice(client, upstream)

    async def _connect(self, rule: netforward.ConnectProxy, client: Stream) -> None:
        reader, writer = client
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEADER_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as err:
                raise Refused(http.HTTPStatus.BAD_REQUEST, "incomplete request header") from err
            address, port = connect_target(head, self._allow)
            target = netforward.Endpoint(str(address), port, rule.netns)
            try:
                upstream = await self._dial(target)
            except (OSError, TimeoutError) as err:
                raise Refused(http.HTTPStatus.BAD_GATEWAY, _describe(err)) from err
        except Refused as refused:
            log.warning(
                "event=connect_refused rule=%s status=%d reason=%s",
                rule.spec(),
                refused.status.value,
                refused.reason,
            )
            with contextlib.suppress(OSError):
                writer.write(refusal(refused.status, refused.reason))
                await writer.drain()
            await _close(writer)
            return
        except OSError:
            await _close(writer)
            return
        try:
            # Exactly this and nothing more before the tunnel: the API server rejects buffered extra bytes.
            writer.write(_ESTABLISHED)
            await writer.drain()
        except OSError:
            await _close(writer)
            await _close(upstream[1])
            return
        await _splice(client, upstream)

    async def close(self) -> None:
        """Stop listening, drop every connection, remove the Unix sockets."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        for path, inode in self._sockets:
            # Only our own: another process may have bound the path since.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == inode:
                    path.unlink()
        self._namespaces.close()


def _family(endpoint: netforward.Endpoint) -> int:
    return socket.AF_INET6 if endpoint.ipv6 else socket.AF_INET


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "connect timed out"
    return str(err) or repr(err)


def _write_ready(path: pathlib.Path, ready: dict[str, str]) -> None:
    # Readers poll for the file: it must appear complete or not at all.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(ready, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


async def serve(
    rules: Sequence[tuple[str, netforward.Rule]],
    allow: Sequence[netforward.Network],
    ready_file: pathlib.Path | None,
) -> int:
    """Listen on every rule (keyed by its text as given), write the ready file, serve until signalled."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
    forwarder = Forwarder(allow)
    ready: dict[str, str] = {}
    try:
        for text, rule in rules:
            try:
                ready[text] = await forwarder.listen(rule)
            except OSError as err:
                log.error("event=listen_failed rule=%s error=%s", text, _describe(err))
                return 1
        if ready_file is not None:
            _write_ready(ready_file, ready)
        log.info("event=ready rules=%d", len(ready))
        await stop.wait()
        return 0
    finally:
        await forwarder.close()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.netforward",
        description="Forward TCP between the host's loopback and network namespaces.",
    )
    parser.add_argument(
        "--forward",
        action="append",
        default=[],
        metavar="[NETNS:]HOST:PORT=[NETNS:]HOST:PORT",
        help="listen on the first endpoint, connect to the second (NETNS: a namespace file path)",
    )
    parser.add_argument(
        "--connect-proxy",
        action="append",
        default=[],
        metavar="UDS_PATH=NETNS",
        help="answer HTTP CONNECT on a Unix socket, connecting from inside NETNS",
    )
    parser.add_argument(
        "--allow", action="append", default=[], metavar="CIDR", help="network a connect proxy may reach"
    )
    parser.add_argument("--ready-file", type=pathlib.Path, help="JSON of rule -> listening address")
    return parser


def main(args: list[str] | None = None) -> int:
    """Parse the command line and serve until SIGTERM/SIGINT; the process exit code."""
    parser = _parser()
    options = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    rules: list[tuple[str, netforward.Rule]] = []
    try:
        rules += [(text, netforward.parse_forward(text)) for text in options.forward]
        rules += [(text, netforward.parse_connect_proxy(text)) for text in options.connect_proxy]
        allow = [netforward.parse_network(text) for text in options.allow]
    except netforward.InvalidRule as err:
        parser.error(str(err))
    if not rules:
        parser.error("no --forward or --connect-proxy given")
    if options.connect_proxy and not allow:
        parser.error("--connect-proxy needs at least one --allow")
    return asyncio.run(serve(rules, allow, options.ready_file))
