"""One plugin's gRPC server on its unix socket in the device-plugin dir."""

from __future__ import annotations

import logging
import os
import pathlib
from concurrent import futures

import grpc

from hsm_discovery import errors
from hsmproto.deviceplugin.v1beta1 import api_pb2_grpc

from . import servicer

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds a stopping server waits for its RPCs (a ListAndWatch stream notices within a second)."""
MAX_SOCKET_PATH = 107
"""The longest unix socket path the kernel (and gRPC) accept, in bytes."""
WORKERS = 4
"""One ListAndWatch stream per kubelet connection holds a thread; Allocate calls are short and rare."""

Identity = tuple[int, int, int]
"""(device, inode, ctime) of a file: a file deleted and created anew differs even when its inode is reused."""


def identity(path: pathlib.Path) -> Identity | None:
    """The identity of the file at path, None when there is none we can see."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


class Endpoint:
    """A started gRPC server on its socket file."""

    def __init__(self, path: pathlib.Path, service: servicer.Servicer) -> None:
        """Serve service on path; raises errors.PluginError when the socket cannot be made."""
        self.path = path
        # gRPC's own bind error names no cause, so the usual ones are told apart here.
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise errors.PluginError(f"cannot serve on {path}: longer than {MAX_SOCKET_PATH} bytes")
        try:
            os.stat(path.parent)
            # A socket file left by an earlier discovery process would make the bind fail.
            path.unlink(missing_ok=True)
        except OSError as err:
            raise errors.PluginError(f"cannot serve on {path}: {err.strerror} ({err.filename})") from err
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=f"plugin-{path.stem}")
        )
        api_pb2_grpc.add_DevicePluginServicer_to_server(service, self._server)
        try:
            self._server.add_insecure_port(f"unix:{path}")
        except RuntimeError as err:
            raise errors.PluginError(f"cannot serve on {path}: {err}") from err
        self._server.start()
        self._identity = identity(path)

    def intact(self) -> bool:
        """Whether our socket file is still in place (the kubelet deletes every socket when it starts)."""
        return self._identity is not None and identity(self.path) == self._identity

    def stop(self) -> None:
        """Stop serving and end every stream; gRPC removes the socket file (so stop before serving anew)."""
        if not self._server.stop(grace=None).wait(STOP_TIMEOUT):
            log.warning("plugin_stop_timed_out", extra={"socket": str(self.path)})
