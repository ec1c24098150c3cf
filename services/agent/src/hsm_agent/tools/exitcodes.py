"""Exit codes of the command-line tools (documented for scripts), and the one place errors become them."""

from __future__ import annotations

import enum

from hsm_agent import errors


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    MODULE = 3
    NO_TOKEN = 4
    PIN = 5
    FULL = 6
    VERIFY = 7
    NOT_FOUND = 8
    UNRESOLVED = 9
    INTERRUPTED = 130


#: What each code tells a script; --help prints it.
MEANING = {
    Exit.OK: "done",
    Exit.FAILED: "another error",
    Exit.USAGE: "wrong flags or arguments, or no PIN source",
    Exit.MODULE: "the PKCS#11 module cannot be loaded",
    Exit.NO_TOKEN: "no such token, or it is not answering",
    Exit.PIN: "the PIN was refused (after one login attempt), is missing, or the token is locked",
    Exit.FULL: "the token is full",
    Exit.VERIFY: "data read back differs from the data written",
    Exit.NOT_FOUND: "no such secret or key",
    Exit.UNRESOLVED: "import-legacy: some legacy paths were not imported (see the report)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM), after cleaning up",
}


def epilog() -> str:
    """The exit codes, for a parser's --help."""
    return "exit codes: " + "; ".join(f"{int(code)} {meaning}" for code, meaning in MEANING.items())


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
