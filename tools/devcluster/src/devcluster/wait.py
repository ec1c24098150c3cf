"""Polling with a deadline: every wait in devcluster and its tests goes through here."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimeoutExpiredError(TimeoutError):
    """The condition did not hold before the deadline."""


def until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call ``condition`` until it returns something other than None/False; raise Timeout at the deadline.

    Exceptions raised by ``condition`` count as "not yet" (the thing polled is often still starting),
    and the last one is attached to the Timeout so a failure says why.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
        except Exception as err:
            last_error = err
        else:
            if result is not None and result is not False:
                return result
        if time.monotonic() >= deadline:
            detail = f": last error {last_error!r}" if last_error else ""
            raise TimeoutExpiredError(
                f"timed out after {timeout:.0f}s waiting for {what}{detail}"
            ) from last_error
        time.sleep(interval)
