"""Exit codes of the command-line tools (documented for scripts), and the one place errors become them."""

from __future__ import annotations

import enum

from hsm_agent import errors


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    """Anything not named below."""
    USAGE = 2
    """Flags or arguments are wrong (argparse uses 2 as well)."""
    MODULE = 3
    """The PKCS#11 module cannot be loaded."""
    NO_TOKEN = 4
    """No such token, or it is not answering."""
    PIN = 5
    """The PIN was refused (or is missing, or the token is locked); one login attempt was made at most."""
    FULL = 6
    """The token has no room (its object budget or its memory)."""
    VERIFY = 7
    """Data read back differs from the data written, or stored objects do not verify."""
    NOT_FOUND = 8
    """The path (or key) asked for does not exist."""
    UNRESOLVED = 9
    """import-legacy: some legacy paths were not imported (conflicts, ambiguous or incomplete paths)."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM (after cleaning up)."""


def for_error(error: errors.AgentError) -> Exit:
    """The exit code a command-line tool ends with after error."""
    # Subclasses before their bases: ModuleUnavailable is a DeviceUnavailable, WrongPin a NotLoggedIn.
    table: tuple[tuple[type[errors.AgentError], Exit], ...] = (
        (errors.ModuleUnavailable, Exit.MODULE),
        (errors.NotLoggedIn, Exit.PIN),
        (errors.DeviceUnavailable, Exit.NO_TOKEN),
        (errors.TokenFull, Exit.FULL),
        (errors.Corrupt, Exit.VERIFY),
        (errors.NotFound, Exit.NOT_FOUND),
        (errors.InvalidInput, Exit.USAGE),
    )
    for kind, code in table:
        if isinstance(error, kind):
            return code
    return Exit.FAILED
