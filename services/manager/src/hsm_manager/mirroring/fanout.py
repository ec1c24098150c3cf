"""Asking every device of a group at once: one round trip however many devices the group has."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import TypeAlias, TypeVar

from hsm_manager.gateway import errors as agent_errors

from . import groups

T = TypeVar("T")

Answer: TypeAlias = T | agent_errors.AgentCallError
"""What one device answered: its value, or why the call failed."""

#: Threads asking devices on behalf of all requests of a process; each call is bounded by the agent
#: call deadline, so a busy pool delays answers but never blocks for good.
POOL_THREADS = 32

# Guards _pool: request threads create it on first use.
_lock = threading.Lock()
_pool: futures.ThreadPoolExecutor | None = None


def _executor() -> futures.ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = futures.ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="fanout")
        return _pool


def _forget_pool() -> None:
    # A forked child (a gunicorn worker) has none of its parent's threads: it starts a pool of its own.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def each(members: Sequence[groups.Member], call: Callable[[groups.Member], T]) -> list[Answer[T]]:
    """call on every member concurrently, answers in the members' order; agent errors are answers.

    The first member is asked on the calling thread, so a one-device group costs no thread hand-off.
    Any other exception is a bug and is raised.
    """
    pending = [_executor().submit(_answer, call, member) for member in members[1:]]
    answers: list[Answer[T]] = [_answer(call, members[0])] if members else []
    answers.extend(future.result() for future in pending)
    return answers


def _answer(call: Callable[[groups.Member], T], member: groups.Member) -> Answer[T]:
    try:
        return call(member)
    except agent_errors.AgentCallError as error:
        return error
