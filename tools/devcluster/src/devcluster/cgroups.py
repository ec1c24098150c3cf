"""A node's cgroup in every cgroup v1 hierarchy: made before its processes start, emptied and removed after.

The kubelet puts its pods below it (``cgroupRoot``), and containerd, its shims and the kubelet itself run in
it, so everything a node started is found here, even after the node's supervisor was killed.
"""

import contextlib
import os
import pathlib
import signal
import time

ROOT = pathlib.Path("/sys/fs/cgroup")


def hierarchies(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """The mounted v1 hierarchies (cpu, memory, pids, ..., name=systemd); the empty v2 mount is left alone."""
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name != "unified" and (entry / "cgroup.procs").exists():
            found.append(entry)
    return found


def create(name: str, root: pathlib.Path = ROOT) -> None:
    """Create ``/<name>`` in every hierarchy (cpuset needs its cpus and mems filled before it takes tasks)."""
    for hierarchy in hierarchies(root):
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((hierarchy / knob).read_text())


def enter(name: str, pid: int = 0, root: pathlib.Path = ROOT) -> None:
    """Move ``pid`` (0: the caller) into ``/<name>`` of every hierarchy."""
    for hierarchy in hierarchies(root):
        (hierarchy / name / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")


def pids(name: str, root: pathlib.Path = ROOT) -> set[int]:
    """Every process in ``/<name>`` or below, in any hierarchy."""
    found: set[int] = set()
    for hierarchy in hierarchies(root):
        top = hierarchy / name
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(FileNotFoundError):
                found.update(int(line) for line in procs.read_text().split())
    return found


def kill_and_remove(name: str, timeout: float = 20.0, root: pathlib.Path = ROOT) -> None:
    """SIGKILL every process in ``/<name>`` (they were all started for the node), then remove its cgroups.

    Raises TimeoutError naming what is left when processes or cgroups remain after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while remaining := pids(name, root):
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {sorted(remaining)} still in cgroup {name}")
        time.sleep(0.05)
    for hierarchy in hierarchies(root):
        top = hierarchy / name
        if not top.is_dir():
            continue
        # Deepest first: a cgroup with children cannot be removed.
        for path in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            _rmdir(path, deadline)
        _rmdir(top, deadline)


def _rmdir(path: pathlib.Path, deadline: float) -> None:
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            # EBUSY for a moment after its last task died.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def leftovers(prefix: str, root: pathlib.Path = ROOT) -> set[str]:
    """Names of cgroups at the top of any hierarchy that start with ``prefix``."""
    names: set[str] = set()
    for hierarchy in hierarchies(root):
        names.update(p.name for p in hierarchy.iterdir() if p.is_dir() and p.name.startswith(prefix))
    return names
