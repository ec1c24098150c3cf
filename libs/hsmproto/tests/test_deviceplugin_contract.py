"""The kubelet's device plugin contract (v1beta1): names, RPC shapes and field numbers are the kubelet's.

Checked against kubernetes/kubernetes staging/src/k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto;
a mismatch here means the kubelet would read our messages wrongly, silently.
"""

import pytest
from google.protobuf import descriptor

from hsmproto.deviceplugin.v1beta1 import api_pb2

F = descriptor.FieldDescriptor

RPCS = {
    ("Registration", "Register"): ("RegisterRequest", "Empty", False),
    ("DevicePlugin", "GetDevicePluginOptions"): ("Empty", "DevicePluginOptions", False),
    ("DevicePlugin", "ListAndWatch"): ("Empty", "ListAndWatchResponse", True),
    ("DevicePlugin", "GetPreferredAllocation"): (
        "PreferredAllocationRequest",
        "PreferredAllocationResponse",
        False,
    ),
    ("DevicePlugin", "Allocate"): ("AllocateRequest", "AllocateResponse", False),
    ("DevicePlugin", "PreStartContainer"): ("PreStartContainerRequest", "PreStartContainerResponse", False),
}

# message → field → (number, type, repeated)
FIELDS: dict[str, dict[str, tuple[int, int, bool]]] = {
    "Empty": {},
    "DevicePluginOptions": {
        "pre_start_required": (1, F.TYPE_BOOL, False),
        "get_preferred_allocation_available": (2, F.TYPE_BOOL, False),
    },
    "RegisterRequest": {
        "version": (1, F.TYPE_STRING, False),
        "endpoint": (2, F.TYPE_STRING, False),
        "resource_name": (3, F.TYPE_STRING, False),
        "options": (4, F.TYPE_MESSAGE, False),
    },
    "ListAndWatchResponse": {"devices": (1, F.TYPE_MESSAGE, True)},
    "Device": {"ID": (1, F.TYPE_STRING, False), "health": (2, F.TYPE_STRING, False)},
    "PreferredAllocationRequest": {"container_requests": (1, F.TYPE_MESSAGE, True)},
    "ContainerPreferredAllocationRequest": {
        "available_deviceIDs": (1, F.TYPE_STRING, True),
        "must_include_deviceIDs": (2, F.TYPE_STRING, True),
        "allocation_size": (3, F.TYPE_INT32, False),
    },
    "PreferredAllocationResponse": {"container_responses": (1, F.TYPE_MESSAGE, True)},
    "ContainerPreferredAllocationResponse": {"deviceIDs": (1, F.TYPE_STRING, True)},
    "AllocateRequest": {"container_requests": (1, F.TYPE_MESSAGE, True)},
    "ContainerAllocateRequest": {"devices_ids": (1, F.TYPE_STRING, True)},
    "AllocateResponse": {"container_responses": (1, F.TYPE_MESSAGE, True)},
    "ContainerAllocateResponse": {
        "envs": (1, F.TYPE_MESSAGE, True),
        "mounts": (2, F.TYPE_MESSAGE, True),
        "devices": (3, F.TYPE_MESSAGE, True),
    },
    "Mount": {
        "container_path": (1, F.TYPE_STRING, False),
        "host_path": (2, F.TYPE_STRING, False),
        "read_only": (3, F.TYPE_BOOL, False),
    },
    "DeviceSpec": {
        "container_path": (1, F.TYPE_STRING, False),
        "host_path": (2, F.TYPE_STRING, False),
        "permissions": (3, F.TYPE_STRING, False),
    },
    "PreStartContainerRequest": {"devices_ids": (1, F.TYPE_STRING, True)},
    "PreStartContainerResponse": {},
}

MESSAGE_FIELDS = {
    ("RegisterRequest", "options"): "DevicePluginOptions",
    ("ListAndWatchResponse", "devices"): "Device",
    ("PreferredAllocationRequest", "container_requests"): "ContainerPreferredAllocationRequest",
    ("PreferredAllocationResponse", "container_responses"): "ContainerPreferredAllocationResponse",
    ("AllocateRequest", "container_requests"): "ContainerAllocateRequest",
    ("AllocateResponse", "container_responses"): "ContainerAllocateResponse",
    ("ContainerAllocateResponse", "mounts"): "Mount",
    ("ContainerAllocateResponse", "devices"): "DeviceSpec",
}


def test_package_is_v1beta1() -> None:
    assert api_pb2.DESCRIPTOR.package == "v1beta1"
    assert set(api_pb2.DESCRIPTOR.services_by_name) == {"Registration", "DevicePlugin"}


@pytest.mark.parametrize("rpc", RPCS, ids="/".join)
def test_rpcs_keep_their_paths_and_message_types(rpc: tuple[str, str]) -> None:
    service, name = rpc
    shape = RPCS[rpc]
    method = api_pb2.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    assert method.full_name == f"v1beta1.{service}.{name}"
    assert (method.input_type.name, method.output_type.name, method.server_streaming) == shape
    assert not method.client_streaming


def test_services_declare_exactly_these_rpcs() -> None:
    for service in ("Registration", "DevicePlugin"):
        declared = set(api_pb2.DESCRIPTOR.services_by_name[service].methods_by_name)
        assert declared == {name for owner, name in RPCS if owner == service}


@pytest.mark.parametrize(("message", "fields"), FIELDS.items())
def test_fields_keep_their_names_numbers_and_types(
    message: str, fields: dict[str, tuple[int, int, bool]]
) -> None:
    found = api_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name
    assert {name: (field.number, field.type, field.is_repeated) for name, field in found.items()} == fields


@pytest.mark.parametrize(("field", "message"), MESSAGE_FIELDS.items())
def test_message_fields_carry_their_message_types(field: tuple[str, str], message: str) -> None:
    owner, name = field
    assert api_pb2.DESCRIPTOR.message_types_by_name[owner].fields_by_name[name].message_type.name == message


def test_envs_is_a_string_map() -> None:
    envs = api_pb2.DESCRIPTOR.message_types_by_name["ContainerAllocateResponse"].fields_by_name["envs"]
    entry = envs.message_type
    assert entry.GetOptions().map_entry
    assert [(f.name, f.number, f.type) for f in entry.fields] == [
        ("key", 1, F.TYPE_STRING),
        ("value", 2, F.TYPE_STRING),
    ]
