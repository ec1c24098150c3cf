"""``hsm-agent selftest``: check a token from the command line, with the agent's own store.

Operations: ``info`` (the token and how full it is), ``test`` (write, read back, compare, delete and check
the scratch secret is gone), ``list``, ``read``, ``write`` and ``delete``. Everything it writes is in the
agent's storage format, so what it reads and writes is exactly what the agent would serve.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

from hsm_agent import errors
from hsm_agent.store import layout, secret_store
from hsm_common import names

from . import exitcodes, session

PROG = "hsm-agent selftest"
#: The one path the test cycle writes: fixed, so that a run killed before its cleanup leaves at most this
#: secret (the next run overwrites and deletes it) and its delete at most one tombstone.
SCRATCH_PATH = "hsm-selftest/scratch"
WRITER = "hsm-agent selftest"


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of the test cycle: what was checked, how it went, how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float


class _StepFailed(Exception):
    """A step of the cycle found the token doing something else than it was asked (the message says what)."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What an operation found: a JSON document, the same for people, and the exit code."""

    document: dict[str, Any]
    lines: list[str]
    code: exitcodes.Exit = exitcodes.Exit.OK
    raw: bytes | None = None
    """A value the user asked to see, written to stdout as is (text mode only)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a token with the agent's own store: its info, a write/read/verify/delete cycle,"
        " and list, read, write and delete of secrets in the agent's format.",
        epilog=exitcodes.epilog(),
        allow_abbrev=False,
    )
    session.add_token_flags(parser)
    ops = parser.add_subparsers(dest="op", metavar="OPERATION")
    ops.add_parser("info", help="the token, its PIN state and how full it is")
    ops.add_parser("test", help=f"write, read, verify and delete {SCRATCH_PATH} (the default)")
    listing = ops.add_parser("list", help="the secrets on the token")
    listing.add_argument("prefix", nargs="?", default="", help="only paths under this prefix")
    read = ops.add_parser("read", help="a secret's keys, sizes and metadata; one value with --key")
    read.add_argument("path")
    read.add_argument("--key", help="print this key's value (raw on stdout; base64 in --json)")
    write = ops.add_parser("write", help="write a secret from files (never from the command line)")
    write.add_argument("path")
    write.add_argument(
        "--from-file",
        action="append",
        required=True,
        metavar="KEY=FILE",
        help="a key and the file holding its value ('-' reads standard input); repeat for more keys",
    )
    write.add_argument("--description", default="", help="the secret's description")
    delete = ops.add_parser("delete", help="delete a secret, or one key of it with --key")
    delete.add_argument("path")
    delete.add_argument("--key", help="delete only this key")
    return parser


def main(argv: list[str]) -> int:
    """Run one operation; the exit code says how it went (see exitcodes.Exit)."""
    return session.run_command(PROG, argv, build_parser, _run)


def _run(args: argparse.Namespace) -> int:
    operation = _OPERATIONS[args.op or "test"]
    with session.open_store(args) as store:
        report = operation(store, args)
    if args.json:
        print(json.dumps({"ok": report.code is exitcodes.Exit.OK, **report.document}, indent=2))
    else:
        for line in report.lines:
            print(line)
        if report.raw is not None:
            sys.stdout.flush()
            sys.stdout.buffer.write(report.raw)
            sys.stdout.buffer.flush()
    return int(report.code)


# ---------------------------------------------------------------------- operations


def info(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    token = store.info
    assert token is not None  # connect_once succeeded
    room = store.capacity()
    document = {
        "token": dataclasses.asdict(token),
        "capacity": dataclasses.asdict(room),
        "secrets": store.index.live_count(),
    }
    lines = [
        f"token        {token.label} (serial {token.serial})",
        f"made by      {token.manufacturer}, model {token.model}, firmware {token.firmware}",
        f"PIN          {', '.join(token.pin_warnings) or 'no warning'}",
        f"objects      {room.used_objects} used of {room.max_objects}, {room.free_objects} free for secrets",
        f"secrets      {document['secrets']}",
    ]
    return Report(document, lines)


def test(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    steps = cycle(store)
    passed = all(step.ok for step in steps)
    lines = [
        f"{step.name:<8}{'ok' if step.ok else 'FAILED':<8}{step.seconds * 1000:8.1f} ms  {step.detail}"
        for step in steps
    ]
    lines.append("selftest passed" if passed else "selftest FAILED")
    document = {"path": SCRATCH_PATH, "steps": [dataclasses.asdict(step) for step in steps]}
    return Report(document, lines, exitcodes.Exit.OK if passed else exitcodes.Exit.VERIFY)


def cycle(store: secret_store.SecretStore, path: str = SCRATCH_PATH) -> list[Step]:
    """Write random data at path, read it back, compare it byte for byte, delete it and check it is gone;
    the steps taken, the last one failed when the token did not give back what it was given.

    Whatever stops the cycle (a failed step, an error, Ctrl-C, SIGTERM), a scratch secret it wrote is
    deleted before it returns or the exception goes on.
    """
    data = {"small": secrets.token_bytes(32), "large": secrets.token_bytes(1024)}
    meta = layout.Metadata(description="hsm-agent selftest scratch secret", source=WRITER)
    steps: list[Step] = []
    written = False

    def timed(name: str, action: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail, ok = action(), True
        except _StepFailed as failure:
            detail, ok = str(failure), False
        steps.append(Step(name, ok, detail, time.perf_counter() - started))
        return ok

    def write() -> str:
        nonlocal written
        head = store.write(path, data, meta, writer=WRITER)
        written = True
        return f"{len(data)} keys, {sum(map(len, data.values()))} bytes at {path} (version {head.version})"

    def verify() -> str:
        if store.read(path).data != data:
            raise _StepFailed("the data read back differs from the data written")
        return "read back identical, byte for byte"

    def delete() -> str:
        nonlocal written
        store.delete(path, writer=WRITER)
        written = False
        return "deleted"

    def gone() -> str:
        try:
            store.read(path)
        except errors.NotFound:
            return "no longer readable"
        raise _StepFailed("still readable after its delete")

    try:
        for name, action in (("write", write), ("verify", verify), ("delete", delete), ("gone", gone)):
            if not timed(name, action):
                break
    finally:
        if written:
            with contextlib.suppress(errors.AgentError):
                store.delete(path, writer=WRITER)
    return steps


def list_secrets(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    heads = [head for head in store.index.entries(args.prefix) if not head.deleted]
    entries = [
        {"path": h.path, "version": h.version, "keys": list(h.keys), "time": h.time, "writer": h.writer}
        for h in heads
    ]
    lines = [f"{h.path}  v{h.version}  {', '.join(h.keys)}  {h.time}  {h.writer}" for h in heads]
    return Report({"secrets": entries}, lines or ["no secrets"])


def read(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    secret = store.read(names.validate_path(args.path))
    head = secret.head
    if args.key is not None:
        if args.key not in secret.data:
            raise errors.NotFound(f"secret {head.path!r} has no key {args.key!r}")
        value = secret.data[args.key]
        document = {"path": head.path, "key": args.key, "value_base64": base64.b64encode(value).decode()}
        return Report(document, [], raw=value)
    meta = dataclasses.asdict(head.metadata)
    document = {
        "path": head.path,
        "version": head.version,
        "checksum": head.checksum,
        "time": head.time,
        "writer": head.writer,
        "sizes": {key: len(value) for key, value in sorted(secret.data.items())},
        "metadata": meta,
    }
    lines = [f"{head.path}  version {head.version}  {head.checksum}  written {head.time} by {head.writer}"]
    lines += [f"  {key}: {len(value)} bytes" for key, value in sorted(secret.data.items())]
    lines += [f"  metadata {name}: {value}" for name, value in meta.items() if value]
    return Report(document, lines)


def _read_value(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        with open(source, "rb") as file:
            return file.read()
    except OSError as error:
        raise session.UsageError(f"cannot read {source}: {error.strerror}") from error


def write(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    path = names.validate_path(args.path)
    data: dict[str, bytes] = {}
    for item in args.from_file:
        key, sep, source = item.partition("=")
        if not sep:
            raise session.UsageError(f"--from-file takes KEY=FILE, not {item!r}")
        data[key] = _read_value(source)
    try:
        names.validate_data(data)
    except names.InvalidName as error:
        raise session.UsageError(str(error)) from error
    head = store.write(path, data, layout.Metadata(description=args.description), writer=WRITER)
    document = {
        "path": head.path,
        "version": head.version,
        "keys": list(head.keys),
        "checksum": head.checksum,
    }
    return Report(document, [f"wrote {head.path} version {head.version} ({', '.join(head.keys)})"])


def delete(store: secret_store.SecretStore, args: argparse.Namespace) -> Report:
    path = names.validate_path(args.path)
    head = store.delete(path, args.key or "", writer=WRITER)
    what = f"key {args.key} of {path}" if args.key else path
    return Report({"path": path, "version": head.version, "key": args.key}, [f"deleted {what}"])


_OPERATIONS: dict[str, Callable[[secret_store.SecretStore, argparse.Namespace], Report]] = {
    "info": info,
    "test": test,
    "list": list_secrets,
    "read": read,
    "write": write,
    "delete": delete,
}
