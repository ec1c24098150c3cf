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
    return discoveryspec.daemonset("hsm", "ns", SPEC, OWNER, "hsm-discovery:dev")


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
