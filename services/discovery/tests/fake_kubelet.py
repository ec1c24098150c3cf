"""A stand-in kubelet for the device plugin tests: real gRPC on real unix sockets, no mocks.

Like the kubelet it serves Registration on <dir>/kubelet.sock, dials every registering plugin back before
it answers, asks for its options and follows its ListAndWatch stream; on restart it deletes every socket
in the dir and serves a new kubelet.sock.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from concurrent import futures

import grpc

from hsmproto.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

DIAL_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class Registration:
    request: api_pb2.RegisterRequest
    options: api_pb2.DevicePluginOptions
    """What the plugin's GetDevicePluginOptions answered when dialled back."""


class _Plugin:
    """One registered plugin as the kubelet holds it: a channel and the latest ListAndWatch list."""

    def __init__(self, socket: pathlib.Path) -> None:
        self.channel = grpc.insecure_channel(f"unix:{socket}")
        grpc.channel_ready_future(self.channel).result(timeout=DIAL_TIMEOUT)
        self.stub = api_pb2_grpc.DevicePluginStub(self.channel)
        self.lists: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._call = self.stub.ListAndWatch(api_pb2.Empty())
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for response in self._call:
                with self._lock:
                    self.lists.append({d.ID: d.health for d in response.devices})
        except grpc.RpcError:
            pass  # the plugin went away or we hung up: the kubelet would wait for a new registration

    def latest(self) -> dict[str, str] | None:
        with self._lock:
            return self.lists[-1] if self.lists else None

    def streaming(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._call.cancel()
        self.channel.close()
        self._thread.join(timeout=DIAL_TIMEOUT)


class FakeKubelet(api_pb2_grpc.RegistrationServicer):  # type: ignore[misc]
    def __init__(self, plugin_dir: pathlib.Path) -> None:
        self.dir = plugin_dir
        self.socket = plugin_dir / "kubelet.sock"
        self._lock = threading.Lock()
        self.registrations: list[Registration] = []
        self._plugins: dict[str, _Plugin] = {}
        self._server: grpc.Server | None = None
        self.start()

    def start(self) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_RegistrationServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"unix:{self.socket}")
        self._server.start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.stop(grace=None).wait(DIAL_TIMEOUT)
        with self._lock:
            plugins, self._plugins = self._plugins, {}
        for plugin in plugins.values():
            plugin.close()

    def restart(self) -> None:
        """What a kubelet restart does to the dir: every socket deleted, a new kubelet.sock."""
        self.stop()
        for path in self.dir.iterdir():
            if path.is_socket():
                path.unlink()
        self.start()

    def Register(self, request: api_pb2.RegisterRequest, context: grpc.ServicerContext) -> api_pb2.Empty:
        try:
            plugin = _Plugin(self.dir / request.endpoint)
        except grpc.FutureTimeoutError:
            context.abort(grpc.StatusCode.UNKNOWN, f"cannot dial {request.endpoint}")
        options = plugin.stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=DIAL_TIMEOUT)
        with self._lock:
            old = self._plugins.pop(request.resource_name, None)
            self._plugins[request.resource_name] = plugin
            self.registrations.append(Registration(request=request, options=options))
        if old is not None:
            old.close()
        return api_pb2.Empty()

    def registered(self, resource: str) -> list[Registration]:
        with self._lock:
            return [r for r in self.registrations if r.request.resource_name == resource]

    def devices(self, resource: str) -> dict[str, str] | None:
        """The latest device list (ID → health) the plugin of resource streamed; None before the first."""
        with self._lock:
            plugin = self._plugins.get(resource)
        return None if plugin is None else plugin.latest()

    def streaming(self, resource: str) -> bool:
        with self._lock:
            plugin = self._plugins.get(resource)
        return plugin is not None and plugin.streaming()

    def allocate(self, resource: str, *containers: list[str]) -> api_pb2.AllocateResponse:
        """Allocate as the kubelet would at container creation; raises grpc.RpcError on refusal."""
        with self._lock:
            plugin = self._plugins[resource]
        request = api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=ids) for ids in containers]
        )
        response: api_pb2.AllocateResponse = plugin.stub.Allocate(request, timeout=DIAL_TIMEOUT)
        return response
