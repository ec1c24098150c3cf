import copy
from typing import Any

from hsm_common import models
from hsm_manager.decide import discoveryspec, owners
from hsm_manager.operator import config, podextras, pools

OWNER = owners.device_owner("hsm", "uid-1")
SPEC = models.HSMDeviceSpec.model_validate(
    {
        "deviceType": "Generic",
        "pkcs11": {"libraryPath": "/usr/lib/x.so", "pinSecret": {"name": "p", "key": "p"}},
    }
)
UMOCKDEV = podextras.PodExtras(("/run/umockdev",), (("UMOCKDEV_DIR", "/run/umockdev"),))


class FakeKube:
    """Holds one DaemonSet the way the API server returns it: with defaults filled in."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored
        self.replaced: list[dict[str, Any]] = []

    def ensure(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.stored

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.replaced.append(obj)
        return obj


def as_served(extras: podextras.PodExtras) -> dict[str, Any]:
    cfg = discoveryspec.DiscoveryConfig("hsm-discovery:dev", extras.host_paths, extras.env)
    obj = copy.deepcopy(discoveryspec.daemonset("hsm", "ns", SPEC, OWNER, cfg))
    obj["metadata"]["resourceVersion"] = "7"
    pod = obj["spec"]["template"]["spec"]
    for env in pod["containers"][0]["env"]:
        if "valueFrom" in env:
            env["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    pod["dnsPolicy"] = "ClusterFirst"
    return obj


def reconciler(client: FakeKube, extras: podextras.PodExtras) -> pools.Reconciler:
    cfg = config.OperatorConfig("ns", "hsm-agent:dev", "hsm-discovery:dev", discovery_extras=extras)
    return pools.Reconciler(client, None, cfg, None)  # type: ignore[arg-type]


def desired(recon: pools.Reconciler) -> dict[str, Any]:
    return discoveryspec.daemonset("hsm", "ns", SPEC, OWNER, recon._discovery_cfg)


def test_daemonset_as_served_with_the_same_extras_is_left_alone() -> None:
    client = FakeKube(as_served(UMOCKDEV))
    recon = reconciler(client, UMOCKDEV)
    recon._ensure_daemonset(desired(recon))
    assert client.replaced == []


def test_daemonset_without_extras_as_served_is_left_alone() -> None:
    client = FakeKube(as_served(podextras.PodExtras()))
    recon = reconciler(client, podextras.PodExtras())
    recon._ensure_daemonset(desired(recon))
    assert client.replaced == []


def test_daemonset_is_replaced_when_discovery_extras_change() -> None:
    client = FakeKube(as_served(podextras.PodExtras()))
    recon = reconciler(client, UMOCKDEV)
    recon._ensure_daemonset(desired(recon))
    [replaced] = client.replaced
    assert replaced["metadata"]["resourceVersion"] == "7"
    assert replaced["spec"]["template"]["spec"]["volumes"][-1]["hostPath"]["path"] == "/run/umockdev"


def test_device_plugin_settings_reach_the_discovery_pods() -> None:
    cfg = config.OperatorConfig(
        "ns",
        "hsm-agent:dev",
        "hsm-discovery:dev",
        device_mounts=("/var/lib/softhsm",),
        device_env=(("SOFTHSM2_CONF", "/var/lib/softhsm/softhsm2.conf"),),
        device_node_root="/var/lib/devnodes",
    )
    discovery_cfg = pools.Reconciler(FakeKube({}), None, cfg, None)._discovery_cfg  # type: ignore[arg-type]
    assert discovery_cfg.device_mounts == cfg.device_mounts
    assert discovery_cfg.device_env == cfg.device_env
    assert discovery_cfg.device_node_root == "/var/lib/devnodes"


def test_daemonset_is_replaced_when_the_device_plugin_settings_change() -> None:
    client = FakeKube(as_served(podextras.PodExtras()))
    cfg = config.OperatorConfig(
        "ns", "hsm-agent:dev", "hsm-discovery:dev", device_mounts=("/var/lib/softhsm",)
    )
    recon = pools.Reconciler(client, None, cfg, None)  # type: ignore[arg-type]
    recon._ensure_daemonset(desired(recon))
    [replaced] = client.replaced
    env = {e["name"]: e.get("value") for e in replaced["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HSM_DISCOVERY_DEVICE_MOUNTS"] == "/var/lib/softhsm"
