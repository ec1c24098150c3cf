"""``python -m devcluster._testbed_driver DIR``: owns one node's umockdev testbed until SIGTERM.

Runs under ``umockdev-wrapper`` because libumockdev resolves sysfs paths through the preload library.
Commands arrive as lines ``<id> add <description file>`` or ``<id> remove <sys path>`` on the FIFO
``DIR/control``; the answer (``ok`` or ``error <text>``) is written to ``DIR/replies/<id>``. ``DIR/root``
appears, holding the testbed directory (UMOCKDEV_DIR of the node's pods), once commands are accepted.
"""

import ctypes
import os
import pathlib
import signal
import sys
import types


class _Lib:
    """The few libumockdev calls the driver makes, typed for ctypes."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libumockdev.so.0")
        lib.umockdev_testbed_new.restype = ctypes.c_void_p
        lib.umockdev_testbed_get_root_dir.argtypes = [ctypes.c_void_p]
        lib.umockdev_testbed_get_root_dir.restype = ctypes.c_char_p
        lib.umockdev_testbed_add_from_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.umockdev_testbed_add_from_string.restype = ctypes.c_int
        lib.umockdev_testbed_uevent.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.umockdev_testbed_remove_device.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib = lib
        self._testbed = lib.umockdev_testbed_new()

    def root(self) -> str:
        root: bytes = self._lib.umockdev_testbed_get_root_dir(self._testbed)
        return root.decode()

    def add(self, description: bytes) -> bool:
        # add_from_string emits the "add" uevents itself; another one would duplicate them.
        return bool(self._lib.umockdev_testbed_add_from_string(self._testbed, description, None))

    def remove(self, sys_path: str) -> None:
        # Removal alone emits nothing: listeners only learn of it from the "remove" uevent sent first.
        self._lib.umockdev_testbed_uevent(self._testbed, sys_path.encode(), b"remove")
        self._lib.umockdev_testbed_remove_device(self._testbed, sys_path.encode())


def _execute(lib: _Lib, command: str, argument: str) -> str:
    if command == "add":
        try:
            description = pathlib.Path(argument).read_bytes()
        except OSError as err:
            return f"error cannot read {argument}: {err.strerror}"
        return "ok" if lib.add(description) else "error umockdev refused the description"
    if command == "remove":
        if not os.path.isdir(os.path.join(lib.root(), argument.lstrip("/"))):
            return f"error no device {argument}"
        lib.remove(argument)
        return "ok"
    return f"error unknown command {command!r}"


def _reply(replies: pathlib.Path, request_id: str, answer: str) -> None:
    tmp = replies / f".{request_id}.tmp"
    tmp.write_text(answer)
    os.replace(tmp, replies / request_id)


def main(argv: list[str] | None = None) -> int:
    """Serve commands until SIGTERM."""
    directory = pathlib.Path((argv or sys.argv[1:])[0])
    replies = directory / "replies"
    replies.mkdir(parents=True, exist_ok=True)
    control = directory / "control"
    if not control.exists():
        os.mkfifo(control, 0o600)
    lib = _Lib()

    def on_signal(_signum: int, _frame: types.FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    # Read and write: the FIFO then never reports end-of-file when a client closes its end.
    fd = os.open(control, os.O_RDWR)
    (directory / "root.tmp").write_text(lib.root())
    os.replace(directory / "root.tmp", directory / "root")
    with os.fdopen(fd, "r") as commands:
        for line in commands:
            request_id, _, rest = line.strip().partition(" ")
            command, _, argument = rest.partition(" ")
            if request_id:
                _reply(replies, request_id, _execute(lib, command, argument))
    return 0


if __name__ == "__main__":
    sys.exit(main())
