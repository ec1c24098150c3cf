"""``python -m devcluster.schsm``: an emulated SmartCard-HSM in vpcd's reader until stdin closes.

With ``--control``, it says ``ready`` once its flash file exists, then takes commands on stdin: ``remove``
takes the card out of the reader (answered ``removed``), ``insert`` puts it back (answered ``inserted`` once
vpcd accepted it). Without, stdin is ignored and the process runs until killed.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import select
import sys

from . import card, flash, provisioning, vpcd

log = logging.getLogger("devcluster.schsm")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devcluster.schsm", description=__doc__)
    parser.add_argument("--state", required=True, type=pathlib.Path, help="the card's flash file")
    parser.add_argument("--serial", default="EMU00000001", help="serial of a new card")
    parser.add_argument("--capacity", type=int, default=provisioning.CAPACITY_4K, help="flash bytes")
    parser.add_argument("--pin-file", type=pathlib.Path, help="initialise a new card with this user PIN")
    parser.add_argument("--label", help="token label of a new, initialised card")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=vpcd.PORT)
    parser.add_argument("--removed", action="store_true", help="start out of the reader")
    parser.add_argument("--control", action="store_true", help="take remove/insert lines on stdin")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds each command takes (the card itself takes ~0.1 ms)",
    )
    return parser


def open_card(args: argparse.Namespace) -> card.SmartCardHsm:
    """The card of the state file, made (and initialised when a PIN is given) if there is none yet."""
    store = flash.Flash(args.state)
    if store.exists():
        return card.SmartCardHsm(store.load(), store)
    memory = provisioning.new_device(args.serial, args.capacity)
    if args.pin_file is not None:
        pin = args.pin_file.read_text().rstrip("\r\n").encode()
        provisioning.initialise(memory, pin, args.label)
    store.save(memory)
    return card.SmartCardHsm(memory, store)


def _reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(link: vpcd.Link, inserted: bool, control: bool) -> None:
    """Serve vpcd and, with ``control``, stdin's commands, until stdin ends."""
    announce = False
    while True:
        if inserted and link.sock is None and link.connect() and announce:
            _reply("inserted")
            announce = False
        # One command at a time (each waits for its answer), so stdin's buffer never hides a second line.
        watched = [link.sock.fileno()] if link.sock is not None else []
        if control:
            watched.append(sys.stdin.fileno())
        timeout = 0.05 if inserted and link.sock is None else None
        ready, _, _ = select.select(watched, [], [], timeout)
        if link.sock is not None and link.sock.fileno() in ready:
            try:
                link.handle_one()
            except (vpcd.Disconnected, OSError):
                # pcscd went away: the card stays inserted and waits for the next vpcd.
                link.disconnect()
        if control and sys.stdin.fileno() in ready:
            command = sys.stdin.readline().strip()
            if command == "":
                return
            if command == "remove":
                inserted = False
                link.disconnect()
                _reply("removed")
            elif command == "insert":
                inserted, announce = True, True
            else:
                _reply(f"unknown command {command!r}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s schsm %(message)s", stream=sys.stderr)
    link = vpcd.Link(open_card(args), args.host, args.port, args.latency)
    if args.control:
        _reply("ready")
    try:
        run(link, not args.removed, args.control)
    finally:
        link.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
