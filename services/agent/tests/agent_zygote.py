"""Starts hsm-agent processes quickly: imports the agent once, then forks one child per "spawn" line.

Each child is a separate process running the real ``hsm_agent.__main__.main`` with the given arguments,
so a test can SIGKILL it; only the ~1.5 s of imports is shared. Protocol on stdin/stdout, one line each:
``spawn ARG...`` → pid; ``reap PID`` → exit status.
"""

from __future__ import annotations

import os
import shlex
import sys

from hsm_agent import __main__ as agent_main


def serve() -> None:
    for line in sys.stdin:
        command, *args = shlex.split(line)
        if command == "spawn":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = agent_main.main(args)
                finally:
                    os._exit(code)
            print(pid, flush=True)
        elif command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            print(status, flush=True)


if __name__ == "__main__":
    serve()
