"""What the command-line tools share: the flags that name a token, where the PIN comes from, one logged-in
store for the length of a command, and Ctrl-C/SIGTERM turned into an interruption the tools clean up after.

The PIN is never taken on the command line (other users see argv in the process list): it comes from a
file, an environment variable or a prompt, and only the store's login ever sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
import types
from collections.abc import Callable, Iterator, Sequence

from hsm_agent import errors, metrics
from hsm_agent.store import budget, pin, secret_store
from hsm_common import logs, names, settings

from . import exitcodes

ENV = "HSM_AGENT"
#: The variable the PIN is read from when no --pin-file is given (--pin-env names another).
PIN_ENV = "HSM_AGENT_PIN"
_PIN_FLAGS = ("--pin-file", "--pin-env")


class UsageError(Exception):
    """The command line or the environment does not say what to do; the message says what is missing."""


def add_token_flags(parser: argparse.ArgumentParser) -> None:
    """Flags naming the token, the PIN's source and the budget; each falls back to an HSM_AGENT_* variable,
    like the agent's own flags, so the same values work inside the agent's image."""
    add = settings.add_flag
    add(parser, ENV, "--pkcs11-library", default="/usr/lib/softhsm/libsofthsm2.so", help="PKCS#11 module")
    add(parser, ENV, "--token-label", help="label of the token (default: the one initialised token)")
    add(parser, ENV, "--slot-id", type=int, help="slot of the token (instead of --token-label)")
    add(parser, ENV, "--serial", help="serial number of the token (instead of --token-label)")
    add(parser, ENV, "--pin-file", help="file holding the user PIN")
    parser.add_argument(
        "--pin-env",
        default=PIN_ENV,
        metavar="NAME",
        help=f"environment variable holding the user PIN when no --pin-file is given (default: {PIN_ENV});"
        " without either, the PIN is asked for on the terminal",
    )
    add(parser, ENV, "--max-objects", type=int, help="object budget of the token (default: the module's)")
    add(parser, ENV, "--max-object-size", type=int, help="largest object written (default: the module's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--log-level", default="warning", help="debug, info, warning or error (to stderr)")


def refuse_pin_on_argv(argv: Sequence[str]) -> None:
    """UsageError when argv tries to pass a PIN: checked before argparse, whose own error would echo it."""
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name.startswith("--pin") and name not in _PIN_FLAGS:
            raise UsageError(
                f"the PIN is never taken on the command line: use --pin-file, ${PIN_ENV} (or the variable "
                "--pin-env names) or the prompt"
            )


def pin_source(args: argparse.Namespace) -> pin.Source:
    """Where the PIN comes from: --pin-file, else the --pin-env variable, else a prompt on a terminal."""
    if args.pin_file:
        return pin.PinFile(args.pin_file)
    if os.environ.get(args.pin_env):
        return pin.Given(os.environ[args.pin_env])
    if sys.stdin.isatty():
        return pin.Given(getpass.getpass("User PIN: "))
    raise UsageError(f"no PIN: give --pin-file, set ${args.pin_env}, or run on a terminal to be asked for it")


def store_config(args: argparse.Namespace) -> secret_store.StoreConfig:
    """The store's configuration for a tool's flags; UsageError when they do not fit together."""
    if sum(value is not None for value in (args.token_label, args.slot_id, args.serial)) > 1:
        raise UsageError("give at most one of --token-label, --slot-id and --serial")
    if args.max_objects is not None and args.max_objects < budget.RESERVE + 1:
        raise UsageError(f"--max-objects must be at least {budget.RESERVE + 1}")
    return secret_store.StoreConfig(
        library_path=args.pkcs11_library,
        pin_file=args.pin_file or "",
        token_label=args.token_label,
        slot_id=args.slot_id,
        serial=args.serial,
        max_objects=args.max_objects,
        max_object_size=args.max_object_size,
        device_name="hsm-agent-cli",
    )


@contextlib.contextmanager
def open_store(args: argparse.Namespace) -> Iterator[secret_store.SecretStore]:
    """A store logged in to the token with one login attempt; when the command ends, however it ends, the
    objects its writes superseded are destroyed (best effort: the next scan collects what is left) and the
    token is released."""
    store = secret_store.SecretStore(store_config(args), metrics.Metrics(), pin_source(args))
    try:
        store.connect_once()
        yield store
    finally:
        if store.ready:
            with contextlib.suppress(errors.AgentError):
                store.collect()
        store.stop()


def _interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so the cleanup in finally blocks runs for both."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(prog: str, message: str) -> None:
    """Tell the user why the command failed (stderr), in words that never hold a secret value."""
    print(f"{prog}: error: {message}", file=sys.stderr)


def main_guard(prog: str, as_json: bool, run: Callable[[], int]) -> int:
    """Run a command: its errors become an exit code and one message (stderr, or JSON on stdout)."""
    try:
        with sigterm_interrupts():
            return run()
    except KeyboardInterrupt:
        code, message = exitcodes.Exit.INTERRUPTED, "interrupted"
    except (UsageError, names.InvalidName) as error:
        code, message = exitcodes.Exit.USAGE, str(error)
    except errors.WrongPin as error:
        code = exitcodes.Exit.PIN
        message = (
            f"{error}; one login attempt was made: check the PIN before another (tokens lock after a few)"
        )
    except errors.AgentError as error:
        code, message = exitcodes.for_error(error), str(error)
    if as_json:
        print(json.dumps({"ok": False, "exit": int(code), "exit_name": code.name, "error": message}))
    fail(prog, message)
    return int(code)


def run_command(
    prog: str,
    argv: Sequence[str],
    build_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], int],
) -> int:
    """A tool's main: refuse a PIN on argv before argparse could echo it, parse, set up logging, run."""
    try:
        refuse_pin_on_argv(argv)
    except UsageError as error:
        fail(prog, str(error))
        return int(exitcodes.Exit.USAGE)
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    return main_guard(prog, args.json, lambda: run(args))
