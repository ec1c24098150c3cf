"""The DevicePlugin service of one resource: streams its devices and answers Allocate for the kubelet."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

from hsm_discovery import errors, metrics
from hsmproto.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

from . import config, devices, kubelet, resource

log = logging.getLogger(__name__)

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"

STREAM_RECHECK = 1.0
"""Seconds a ListAndWatch stream waits for a change before it checks that its RPC is still alive."""

#: The one mapping from refused allocations to gRPC status codes and metric results.
REFUSALS: dict[type[errors.AllocationRefused], tuple[grpc.StatusCode, str]] = {
    errors.UnknownDevice: (grpc.StatusCode.NOT_FOUND, "unknown_device"),
    errors.DeviceUnhealthy: (grpc.StatusCode.FAILED_PRECONDITION, "unhealthy_device"),
}


def _list(offered: tuple[devices.PluginDevice, ...]) -> api_pb2.ListAndWatchResponse:
    return api_pb2.ListAndWatchResponse(
        devices=[api_pb2.Device(ID=d.id, health=HEALTHY if d.healthy else UNHEALTHY) for d in offered]
    )


def _container(allocation: devices.Allocation) -> api_pb2.ContainerAllocateResponse:
    return api_pb2.ContainerAllocateResponse(
        envs=dict(allocation.env),
        mounts=[api_pb2.Mount(container_path=p, host_path=p, read_only=False) for p in allocation.mounts],
        devices=[
            api_pb2.DeviceSpec(
                container_path=node.container_path, host_path=node.host_path, permissions=devices.PERMISSIONS
            )
            for node in allocation.devices
        ],
    )


class Servicer(api_pb2_grpc.DevicePluginServicer):  # type: ignore[misc]  # generated, untyped
    """DevicePlugin over one Resource; GetPreferredAllocation and PreStartContainer stay unimplemented,
    as the options we register with tell the kubelet."""

    def __init__(self, offer: resource.Resource, settings: config.Config) -> None:
        self._resource = offer
        self._settings = settings

    def GetDevicePluginOptions(
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> api_pb2.DevicePluginOptions:
        return kubelet.options()

    def ListAndWatch(
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> Iterator[api_pb2.ListAndWatchResponse]:
        """The device list now and after every change, until the kubelet hangs up or the server stops."""
        name = self._resource.hsm_device
        context.add_callback(self._resource.wake_streams)
        log.info("plugin_stream_opened", extra={"hsm_device": name})
        seen = -1
        while context.is_active():
            change = self._resource.next_list(seen, STREAM_RECHECK)
            if change is None:
                continue
            seen, offered = change
            log.debug("plugin_devices_sent", extra={"hsm_device": name, "devices": len(offered)})
            yield _list(offered)
        log.info("plugin_stream_closed", extra={"hsm_device": name})

    def Allocate(
        self, request: api_pb2.AllocateRequest, context: grpc.ServicerContext
    ) -> api_pb2.AllocateResponse:
        """One answer per container; a device this node cannot give fails the whole request (and the pod)."""
        name = self._resource.hsm_device
        answers = []
        offered = self._resource.current()
        for container in request.container_requests:
            requested = list(container.devices_ids)
            try:
                allocation = devices.allocate(requested, offered, self._settings)
            except errors.AllocationRefused as err:
                code, result = REFUSALS[type(err)]
                message = f"{self._resource.name}: {err}"
                metrics.PLUGIN_ALLOCATIONS.labels(hsm_device=name, result=result).inc()
                self._resource.refused(message)
                log.warning(
                    "plugin_allocation_refused",
                    extra={"hsm_device": name, "device_ids": requested, "error": message},
                )
                context.abort(code, message)
            metrics.PLUGIN_ALLOCATIONS.labels(hsm_device=name, result="ok").inc()
            log.info(
                "plugin_allocated",
                extra={
                    "hsm_device": name,
                    "device_ids": requested,
                    "device_nodes": [node.host_path for node in allocation.devices],
                    "mounts": list(allocation.mounts),
                },
            )
            answers.append(_container(allocation))
        self._resource.allocated()
        return api_pb2.AllocateResponse(container_responses=answers)
