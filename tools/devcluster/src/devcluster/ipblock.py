"""Claims a pod address block 127.B.0.0/16 per running cluster, so parallel clusters never share pod IPs.

Two test sessions on one machine would otherwise both hand out 127.1.1.1 and their pods would fight over
the same address and port. A block is claimed with an flock on a file in a machine-wide directory; the
lock is passed to a process of the cluster (etcd), so it lasts exactly as long as the cluster does and is
released even when the cluster is killed.
"""

import fcntl
import os
import pathlib
import tempfile

LOCK_DIR = pathlib.Path(tempfile.gettempdir()) / "hsm-devcluster-ipblocks"
FIRST, LAST = 1, 254


class NoFreeBlock(RuntimeError):
    """Every block is claimed."""


def claim(lock_dir: pathlib.Path = LOCK_DIR) -> tuple[int, int]:
    """Claim the lowest free block; return (B, fd of the held lock). Close the fd to release it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    for block in range(FIRST, LAST + 1):
        fd = os.open(lock_dir / f"{block}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return block, fd
    raise NoFreeBlock(f"all pod address blocks under {lock_dir} are claimed")
