from hsm_common import models
from hsm_manager.decide import discoveryspec, owners, pool

OWNER = owners.device_owner("hsm", "uid-1")
SPEC = models.HSMDeviceSpec.model_validate(
    {
        "deviceType": "Generic",
        "nodeSelector": {"hsm": "yes"},
        "pkcs11": {"libraryPath": "/usr/lib/x.so", "pinSecret": {"name": "pin", "key": "pin"}},
    }
)


def daemonset() -> dict:  # type: ignore[type-arg]
    return discoveryspec.daemonset(
        "hsm", "ns", SPEC, OWNER, discoveryspec.DiscoveryConfig("hsm-discovery:dev")
    )


def test_daemonset_mounts_sys_and_udev_read_only() -> None:
    mounts = daemonset()["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {(m["mountPath"], m["readOnly"]) for m in mounts} == {("/sys", True), ("/run/udev", True)}


def test_daemonset_drops_capabilities_and_follows_node_selector() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["nodeSelector"] == {"hsm": "yes"}
    assert pod["serviceAccountName"] == "hsm-discovery"


def test_daemonset_passes_pod_identity_through_the_downward_api() -> None:
    env = {e["name"]: e for e in daemonset()["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_pool_is_named_after_the_device_and_owned_by_it() -> None:
    obj = pool.manifest("hsm", "ns", OWNER)
    assert obj["metadata"]["name"] == "hsm-pool"
    assert obj["metadata"]["ownerReferences"][0]["kind"] == "HSMDevice"


UMOCKDEV = discoveryspec.DiscoveryConfig(
    "hsm-discovery:dev",
    host_paths=("/run/umockdev", "/usr/lib/libumockdev-preload.so.0"),
    env=(("LD_PRELOAD", "/usr/lib/libumockdev-preload.so.0"), ("UMOCKDEV_DIR", "/run/umockdev")),
)


def _pod(config: discoveryspec.DiscoveryConfig) -> dict:  # type: ignore[type-arg]
    return discoveryspec.daemonset("hsm", "ns", SPEC, OWNER, config)["spec"]["template"]["spec"]


def test_without_extras_the_pod_has_only_its_own_env_and_volumes() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["sys", "udev"]
    assert [e["name"] for e in pod["containers"][0]["env"]] == [
        "POD_NAME",
        "POD_NAMESPACE",
        "NODE_NAME",
        "POD_IP",
        "HSM_DISCOVERY_HEALTH_LISTEN",
    ]


def test_host_paths_are_mounted_read_only_at_the_same_path() -> None:
    pod = _pod(UMOCKDEV)
    assert pod["volumes"][2:] == [
        {"name": "host-0", "hostPath": {"path": "/run/umockdev", "type": ""}},
        {"name": "host-1", "hostPath": {"path": "/usr/lib/libumockdev-preload.so.0", "type": ""}},
    ]
    assert pod["containers"][0]["volumeMounts"][2:] == [
        {"name": "host-0", "mountPath": "/run/umockdev", "readOnly": True},
        {"name": "host-1", "mountPath": "/usr/lib/libumockdev-preload.so.0", "readOnly": True},
    ]


def test_a_host_path_marked_read_write_is_mounted_writable() -> None:
    config = discoveryspec.DiscoveryConfig(
        "hsm-discovery:dev", host_paths=("/run/umockdev", "/lib/x.so"), read_only=(False, True)
    )
    mounts = _pod(config)["containers"][0]["volumeMounts"][2:]
    assert [m["readOnly"] for m in mounts] == [False, True]


def test_service_links_stay_out_of_the_environment() -> None:
    assert _pod(UMOCKDEV)["enableServiceLinks"] is False


def test_extra_env_follows_the_specs_own_variables() -> None:
    env = _pod(UMOCKDEV)["containers"][0]["env"]
    assert env[5:] == [
        {"name": "LD_PRELOAD", "value": "/usr/lib/libumockdev-preload.so.0"},
        {"name": "UMOCKDEV_DIR", "value": "/run/umockdev"},
    ]
    assert env[4]["name"] == "HSM_DISCOVERY_HEALTH_LISTEN"
