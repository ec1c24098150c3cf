"""What real nodes change on the host, put back: kernel sysctls, and leftovers of interrupted runs.

The kubelet sets machine-wide sysctls (``vm.overcommit_memory``, ``kernel.panic``, ...) whatever its
configuration says, and ``ip netns add`` turns ``/run/netns`` into a shared bind mount of itself the first
time. The first cluster to start on the machine records both; the last one to stop puts them back. A run
that was killed leaves the record behind, and its namespaces and cgroups; the next start finds them by
their address block (whose lock nobody holds any more) and removes them first.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

from . import cgroups, ipblock, network

SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
"""Machine-wide sysctls the kubelet writes (``setupKernelTunables``)."""
NETNS_DIR = pathlib.Path("/run/netns")


def _sysctl_path(name: str) -> pathlib.Path:
    return pathlib.Path("/proc/sys") / name.replace(".", "/")


def read_sysctls(names: tuple[str, ...] = SYSCTLS) -> dict[str, str]:
    """Current values of the named sysctls (those the kernel has)."""
    values = {}
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def write_sysctls(values: dict[str, str]) -> None:
    """Write the sysctls back (only those that differ)."""
    for name, value in values.items():
        path = _sysctl_path(name)
        if path.read_text().strip() != value:
            path.write_text(f"{value}\n")


def netns_dir_state() -> str:
    """``/run/netns`` as it is: "absent", "dir", or "mount" (``ip netns add`` makes it a mount of itself)."""
    if not NETNS_DIR.exists():
        return "absent"
    mounts = pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    return "mount" if any(line.split()[4] == str(NETNS_DIR) for line in mounts) else "dir"


def restore_netns_dir(state: str) -> None:
    """Put ``/run/netns`` back to ``state`` (a ``netns_dir_state``) when no namespace is left in it."""
    if state != "mount" and netns_dir_state() == "mount" and not any(NETNS_DIR.iterdir()):
        subprocess.run(["umount", str(NETNS_DIR)], check=True, capture_output=True)
    if state == "absent" and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        NETNS_DIR.rmdir()


def _restore(record: dict[str, Any]) -> None:
    write_sysctls(record["sysctls"])
    restore_netns_dir(record["netns_dir"])


def scratch_dir(block: int) -> pathlib.Path:
    """A short host directory of the cluster (Unix socket paths must stay under 108 bytes)."""
    return ipblock.LOCK_DIR / f"run{block}"


@contextlib.contextmanager
def _host_lock(lock_dir: pathlib.Path) -> Iterator[None]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "host.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _held_blocks(lock_dir: pathlib.Path, ignore: int | None = None) -> set[int]:
    held = set()
    for lock_file in lock_dir.glob("*.lock"):
        if not lock_file.stem.isdigit() or int(lock_file.stem) == ignore:
            continue
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.add(int(lock_file.stem))
        finally:
            os.close(fd)
    return held


def _snapshot_file(lock_dir: pathlib.Path) -> pathlib.Path:
    return lock_dir / "sysctls.json"


def clean_up_after_dead_runs(lock_dir: pathlib.Path = ipblock.LOCK_DIR) -> set[int]:
    """Remove what killed runs left and, when no cluster runs, put back the host state they recorded.

    Returns the blocks of the clusters running now.
    """
    with _host_lock(lock_dir):
        held = _held_blocks(lock_dir)
        sweep(held)
        _restore_if_alone(held, lock_dir)
        return held


def before_nodes(block: int, lock_dir: pathlib.Path = ipblock.LOCK_DIR) -> None:
    """Called by a starting cluster that holds ``block``: clean up after dead runs, record the sysctls."""
    with _host_lock(lock_dir):
        held = _held_blocks(lock_dir, ignore=block)
        # Our own block too: a killed run may have held it before us.
        sweep(held)
        snapshot = _restore_if_alone(held, lock_dir)
        if not snapshot.exists():
            tmp = snapshot.with_suffix(".tmp")
            tmp.write_text(json.dumps({"sysctls": read_sysctls(), "netns_dir": netns_dir_state()}))
            os.replace(tmp, snapshot)


def after_nodes(block: int, lock_dir: pathlib.Path = ipblock.LOCK_DIR) -> None:
    """Called by a stopped cluster: remove what is left of ``block``; the last one restores the sysctls."""
    with _host_lock(lock_dir):
        held = _held_blocks(lock_dir, ignore=block)
        remove_block(block)
        _restore_if_alone(held, lock_dir)


def _restore_if_alone(held: set[int], lock_dir: pathlib.Path) -> pathlib.Path:
    """Put back the recorded host state when no other cluster runs; return the record's path.

    With nobody else running, a record left is from a run that never stopped: its values are the host's own.
    """
    snapshot = _snapshot_file(lock_dir)
    if not held and snapshot.exists():
        _restore(json.loads(snapshot.read_text()))
        snapshot.unlink()
    return snapshot


def _block_of(name: str) -> int | None:
    rest = name.removeprefix(network.PREFIX)
    digits = rest.split("-", 1)[0]
    return int(digits) if rest != name and digits.isdigit() else None


def remove_block(block: int) -> None:
    """Kill and remove every cgroup, delete every namespace and the scratch directory of ``block``."""
    prefix = f"{network.PREFIX}{block}-"
    for name in sorted(cgroups.leftovers(prefix)):
        cgroups.kill_and_remove(name)
    if NETNS_DIR.is_dir():
        for entry in sorted(NETNS_DIR.iterdir()):
            if entry.name.startswith(prefix):
                subprocess.run(["ip", "netns", "delete", entry.name], check=False, capture_output=True)
    shutil.rmtree(scratch_dir(block), ignore_errors=True)


def sweep(held: set[int]) -> list[int]:
    """Remove the leftovers of every block nobody holds; return those blocks."""
    names = cgroups.leftovers(network.PREFIX)
    if NETNS_DIR.is_dir():
        names |= {entry.name for entry in NETNS_DIR.iterdir()}
    stale = sorted({b for n in names if (b := _block_of(n)) is not None and b not in held})
    for block in stale:
        remove_block(block)
    return stale
