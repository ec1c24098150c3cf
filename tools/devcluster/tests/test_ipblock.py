"""Pod address blocks: one per live cluster."""

import os
import pathlib
import subprocess
import sys

from devcluster import ipblock


def test_second_claim_gets_the_next_block_and_a_released_block_is_reused(tmp_path: pathlib.Path) -> None:
    first, fd1 = ipblock.claim(tmp_path)
    second, fd2 = ipblock.claim(tmp_path)
    assert (first, second) == (1, 2)
    os.close(fd1)
    again, fd3 = ipblock.claim(tmp_path)
    assert again == 1
    os.close(fd2)
    os.close(fd3)


def test_a_child_holding_the_lock_keeps_the_block_claimed(tmp_path: pathlib.Path) -> None:
    block, fd = ipblock.claim(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, pass_fds=(fd,)
    )
    os.close(fd)
    try:
        other, fd2 = ipblock.claim(tmp_path)
        assert other != block
        os.close(fd2)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    reused, fd3 = ipblock.claim(tmp_path)
    assert reused == block
    os.close(fd3)
