"""Runtime USB hotplug on devcluster nodes: one umockdev testbed per node, owned by a driver process.

The driver (``_testbed_driver``) runs under ``umockdev-wrapper`` with its directory under the cluster's
run dir (``testbeds/<node>``). The node mounts the testbed as ``/var/lib/hsm-devcluster/umockdev``; pods that
preload libumockdev with ``UMOCKDEV_DIR`` set to it see the node's devices and their add/remove uevents.

The kubelet and containerd are not preloaded: for them each plugged device also gets a real character
device node with the description's major and minor, made with mknod under the node's
``/var/lib/hsm-devcluster/devnodes`` (the device plugin's device-node root on the devcluster), and removed
when the device is unplugged. Nothing under the host's /dev is touched.
"""

import dataclasses
import json
import os
import pathlib
import re
import stat
import sys
import uuid

from . import process, realnodes, wait

TESTBEDS_DIR = "testbeds"
_SYS_PATH = re.compile(r"^P:\s*(\S+)", re.MULTILINE)
_DEVNAME = re.compile(r"^E:\s*DEVNAME=(\S+)", re.MULTILINE)
_DEV = re.compile(r"^A:\s*dev=(\d+):(\d+)", re.MULTILINE)
DEVNODES = "devnodes"
"""Under a node's data dir (``/var/lib/hsm-devcluster`` inside the node): the stand-in device nodes."""


class TestbedError(RuntimeError):
    """A testbed command failed or its driver does not answer."""

    __test__ = False  # not a pytest test class, despite the name


def node_dir(run_dir: pathlib.Path, node: str) -> pathlib.Path:
    """The directory of ``node``'s testbed driver (control FIFO, replies, root file)."""
    return run_dir / TESTBEDS_DIR / node


def start_driver(run_dir: pathlib.Path, node: str, timeout: float = 30.0) -> process.Started:
    """Start ``node``'s driver and return once it accepts commands."""
    directory = node_dir(run_dir, node)
    directory.mkdir(parents=True, exist_ok=True)
    # The testbed is a temp dir of the driver's: TMPDIR keeps it inside the run dir, removed with it.
    env = {**os.environ, "TMPDIR": str(directory)}
    argv = ["umockdev-wrapper", sys.executable, "-m", "devcluster._testbed_driver", str(directory)]
    started = process.start(f"testbed-{node}", argv, run_dir / "logs" / f"testbed-{node}.log", env=env)

    def ready() -> bool:
        if not process.is_alive(started):
            raise TestbedError(f"testbed driver of {node} exited:\n{process.log_tail(started)}")
        return (directory / "root").exists()

    try:
        wait.until(ready, timeout, f"testbed driver of {node}")
    except wait.TimeoutExpiredError as err:
        process.stop(started)
        if isinstance(err.__cause__, TestbedError):
            raise err.__cause__ from None
        raise TestbedError(f"{err}\n{process.log_tail(started)}") from None
    _open_to_pods(root(run_dir, node))
    return started


def _open_to_pods(bed: pathlib.Path) -> None:
    # umockdev makes the testbed private to its creator, root. A pod's preloaded libumockdev binds its
    # "netlink" socket (event<fd>) in the testbed's root and connects to its ioctl sockets. Discovery pods
    # run as root without capabilities (they serve the kubelet's root-owned device-plugin directory), so
    # owning the root is what lets them bind there; the testbed stays root's, readable by all.
    bed.chmod(0o755)
    for ioctl_socket in (bed / "ioctl").glob("*"):
        ioctl_socket.chmod(0o666)


def root(run_dir: pathlib.Path, node: str) -> pathlib.Path:
    """``node``'s testbed directory: the ``UMOCKDEV_DIR`` of its pods."""
    try:
        return pathlib.Path((node_dir(run_dir, node) / "root").read_text())
    except FileNotFoundError:
        raise TestbedError(f"node {node} has no testbed in {run_dir}") from None


def nodes(run_dir: pathlib.Path) -> list[str]:
    """Nodes of the cluster in ``run_dir`` that have a testbed."""
    base = run_dir / TESTBEDS_DIR
    return sorted(p.name for p in base.iterdir() if (p / "root").exists()) if base.exists() else []


def sys_paths(description: str) -> list[str]:
    """The sysfs paths a umockdev device description adds (``P:`` lines), as ``/sys/devices/...``."""
    return ["/sys" + p if not p.startswith("/sys/") else p for p in _SYS_PATH.findall(description)]


@dataclasses.dataclass(frozen=True)
class DeviceNode:
    """The device node a description's device has on a real system."""

    path: str
    """``/dev/bus/usb/BBB/DDD``."""
    major: int
    minor: int


def device_node(description: str) -> DeviceNode | None:
    """The device node of a umockdev description (its DEVNAME and ``dev`` attribute), if it has one."""
    name, numbers = _DEVNAME.search(description), _DEV.search(description)
    if name is None or numbers is None:
        return None
    return DeviceNode(name.group(1), int(numbers.group(1)), int(numbers.group(2)))


def devnodes_dir(run_dir: pathlib.Path, node: str) -> pathlib.Path:
    """The host directory the node sees as ``/var/lib/hsm-devcluster/devnodes``."""
    return realnodes.data_dir(run_dir, node) / DEVNODES


def make_device_node(run_dir: pathlib.Path, node: str, device: DeviceNode) -> None:
    """The stand-in device node of device on node (replacing one that is there)."""
    path = devnodes_dir(run_dir, node) / device.path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mknod(path, 0o660 | stat.S_IFCHR, os.makedev(device.major, device.minor))


def _command(run_dir: pathlib.Path, node: str, text: str, timeout: float) -> None:
    directory = node_dir(run_dir, node)
    request_id = uuid.uuid4().hex
    try:
        # Non-blocking: opening fails at once (ENXIO) when no driver holds the FIFO open for reading.
        fd = os.open(directory / "control", os.O_WRONLY | os.O_NONBLOCK)
    except (FileNotFoundError, OSError) as err:
        raise TestbedError(f"testbed driver of {node} is not running ({err.strerror})") from None
    try:
        # One line below PIPE_BUF: written atomically even with other clients writing too.
        os.write(fd, f"{request_id} {text}\n".encode())
    finally:
        os.close(fd)
    reply = directory / "replies" / request_id
    try:
        wait.until(reply.exists, timeout, f"testbed driver of {node} to answer")
    except wait.TimeoutExpiredError:
        raise TestbedError(f"testbed driver of {node} did not answer {text!r}") from None
    answer = reply.read_text()
    reply.unlink()
    if answer != "ok":
        raise TestbedError(f"{node}: {text}: {answer.removeprefix('error ')}")


@dataclasses.dataclass(frozen=True)
class Testbed:
    """A handle on one node's testbed."""

    __test__ = False  # not a pytest test class, despite the name

    run_dir: pathlib.Path
    node: str

    def add(self, description: pathlib.Path, timeout: float = 10.0) -> list[str]:
        """Plug in the devices of a umockdev description file; return their sysfs paths."""
        text = description.read_text()
        paths = sys_paths(text)
        node = device_node(text)
        if node is not None and paths:
            # The node exists before the uevent: udev makes it before anyone hears of the device.
            self._make_node(paths[0], node)
        self._command(f"add {description.resolve()}", timeout)
        return paths

    def remove(self, sys_path: str, timeout: float = 10.0) -> None:
        """Unplug the device at ``sys_path`` (``/sys/devices/...``): a "remove" uevent, then it is gone."""
        self._command(f"remove {sys_path}", timeout)
        nodes_made = self._nodes_made()
        made = nodes_made.pop(sys_path, None)
        if made is not None:
            (devnodes_dir(self.run_dir, self.node) / made.lstrip("/")).unlink(missing_ok=True)
            self._record(nodes_made)

    def _make_node(self, sys_path: str, node: DeviceNode) -> None:
        make_device_node(self.run_dir, self.node, node)
        nodes_made = self._nodes_made()
        nodes_made[sys_path] = node.path
        self._record(nodes_made)

    def _nodes_made(self) -> dict[str, str]:
        try:
            found: dict[str, str] = json.loads(
                (node_dir(self.run_dir, self.node) / "devnodes.json").read_text()
            )
        except FileNotFoundError:
            return {}
        return found

    def _record(self, nodes_made: dict[str, str]) -> None:
        target = node_dir(self.run_dir, self.node) / "devnodes.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(nodes_made))

    def present(self, sys_path: str) -> bool:
        """Whether a device is plugged in at ``sys_path``."""
        return (root(self.run_dir, self.node) / sys_path.lstrip("/")).is_dir()

    def _command(self, text: str, timeout: float) -> None:
        _command(self.run_dir, self.node, text, timeout)
