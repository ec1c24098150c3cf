"""The kubelet's side of the contract: its registration socket and the one call we make to it."""

from __future__ import annotations

import pathlib

import grpc

from hsm_common import constants
from hsm_discovery import errors
from hsmproto.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

SOCKET = "kubelet.sock"
"""The kubelet's Registration socket in the device-plugin dir; recreated whenever the kubelet starts."""
REGISTER_TIMEOUT = 10.0
"""Seconds a registration may take: the kubelet dials the plugin back before it answers."""


def options() -> api_pb2.DevicePluginOptions:
    """What our plugins tell the kubelet: no PreStartContainer and no GetPreferredAllocation calls."""
    return api_pb2.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=False)


def register(plugin_dir: pathlib.Path, endpoint: str, resource_name: str) -> None:
    """Register the plugin serving resource_name on plugin_dir/endpoint; raises errors.PluginError."""
    request = api_pb2.RegisterRequest(
        version=constants.DEVICE_PLUGIN_API_VERSION,
        endpoint=endpoint,
        resource_name=resource_name,
        options=options(),
    )
    with grpc.insecure_channel(f"unix:{plugin_dir / SOCKET}") as channel:
        try:
            api_pb2_grpc.RegistrationStub(channel).Register(request, timeout=REGISTER_TIMEOUT)
        except grpc.RpcError as err:
            raise errors.PluginError(
                f"the kubelet did not register {resource_name}: {err.code().name}: {err.details()}"
            ) from err
