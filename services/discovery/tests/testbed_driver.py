"""Drives a umockdev testbed through libumockdev.so.0 for a test, one command per stdin line.

Runs under ``umockdev-wrapper`` because libumockdev resolves sysfs paths through the preload library.
Prints the testbed directory first (UMOCKDEV_DIR for the processes under test), then ``ok`` or
``error <text>`` per command:
  add <description file>   adds the devices (libumockdev emits their "add" uevents itself)
  remove <sys path>        sends the "remove" uevent, then removes the device (removal alone emits nothing)
"""

from __future__ import annotations

import ctypes
import pathlib
import sys


def main() -> int:
    lib = ctypes.CDLL("libumockdev.so.0")
    lib.umockdev_testbed_new.restype = ctypes.c_void_p
    lib.umockdev_testbed_get_root_dir.argtypes = [ctypes.c_void_p]
    lib.umockdev_testbed_get_root_dir.restype = ctypes.c_char_p
    lib.umockdev_testbed_add_from_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.umockdev_testbed_add_from_string.restype = ctypes.c_int
    lib.umockdev_testbed_uevent.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.umockdev_testbed_remove_device.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    testbed = lib.umockdev_testbed_new()
    print(lib.umockdev_testbed_get_root_dir(testbed).decode(), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "add":
            ok = lib.umockdev_testbed_add_from_string(testbed, pathlib.Path(argument).read_bytes(), None)
            print("ok" if ok else "error add failed", flush=True)
        elif command == "remove":
            lib.umockdev_testbed_uevent(testbed, argument.encode(), b"remove")
            lib.umockdev_testbed_remove_device(testbed, argument.encode())
            print("ok", flush=True)
        else:
            print(f"error unknown command {command!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
