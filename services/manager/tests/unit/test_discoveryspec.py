from hsm_common import constants, models
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


def test_daemonset_mounts_sys_and_udev_read_only_and_the_device_plugin_dir_read_write() -> None:
    mounts = daemonset()["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {(m["mountPath"], m["readOnly"]) for m in mounts} == {
        ("/sys", True),
        ("/run/udev", True),
        (constants.DEVICE_PLUGIN_DIR, False),
        (constants.METRICS_CERT_DIR, True),
    }


def test_the_device_plugin_dir_is_the_kubelets_directory_on_the_node() -> None:
    volumes = {v["name"]: v for v in daemonset()["spec"]["template"]["spec"]["volumes"]}
    assert volumes["device-plugins"]["hostPath"] == {"path": constants.DEVICE_PLUGIN_DIR, "type": "Directory"}
    moved = discoveryspec.DiscoveryConfig(
        "hsm-discovery:dev", device_plugin_dir="/var/lib/k0s/device-plugins"
    )
    volumes = {v["name"]: v for v in _pod(moved)["volumes"]}
    assert volumes["device-plugins"]["hostPath"]["path"] == "/var/lib/k0s/device-plugins"
    env = {e["name"]: e.get("value") for e in _pod(moved)["containers"][0]["env"]}
    assert env["HSM_DISCOVERY_DEVICE_PLUGIN_DIR"] == constants.DEVICE_PLUGIN_DIR


def test_discovery_runs_as_root_without_any_capability() -> None:
    security = daemonset()["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (0, 0)
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert "privileged" not in security


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
    assert [v["name"] for v in pod["volumes"]] == ["sys", "udev", "device-plugins", "metrics-tls"]
    assert [e["name"] for e in pod["containers"][0]["env"]] == [
        "POD_NAME",
        "POD_NAMESPACE",
        "NODE_NAME",
        "POD_IP",
        "HSM_DISCOVERY_HEALTH_LISTEN",
        "HSM_DISCOVERY_METRICS_LISTEN",
        "HSM_DISCOVERY_METRICS_CERT_DIR",
        "HSM_DISCOVERY_HSM_DEVICE",
        "HSM_DISCOVERY_DEVICE_PLUGIN_DIR",
        "HSM_DISCOVERY_DEVICE_NODE_ROOT",
    ]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HSM_DISCOVERY_DEVICE_NODE_ROOT"] == "/"
    # Each DaemonSet's pods serve their own HSMDevice's plugin, and no other.
    assert env["HSM_DISCOVERY_HSM_DEVICE"] == "hsm"


def test_probes_use_the_plain_health_port_and_metrics_have_a_port_of_their_own() -> None:
    container = daemonset()["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": constants.PORT_DISCOVERY_HEALTH, "metrics": constants.PORT_METRICS}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HSM_DISCOVERY_HEALTH_LISTEN"] == f"$(POD_IP):{constants.PORT_DISCOVERY_HEALTH}"
    assert env["HSM_DISCOVERY_METRICS_LISTEN"] == f"$(POD_IP):{constants.PORT_METRICS}"


def test_metrics_serve_the_operators_metrics_leaf_from_an_optional_secret_volume() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "metrics-tls")
    assert volume["secret"] == {"secretName": "hsm-metrics-tls", "optional": True, "defaultMode": 0o400}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HSM_DISCOVERY_METRICS_CERT_DIR"] == constants.METRICS_CERT_DIR


SOFTHSM = discoveryspec.DiscoveryConfig(
    "hsm-discovery:dev",
    device_node_root="/var/lib/hsm-devcluster/devnodes",
    device_mounts=("/var/lib/hsm-devcluster/softhsm", "/opt/vendor"),
    device_env=(("SOFTHSM2_CONF", "/var/lib/hsm-devcluster/softhsm/softhsm2.conf"), ("TRACE", "1")),
)


def test_the_device_plugin_settings_reach_discovery_as_its_variables() -> None:
    env = {e["name"]: e.get("value") for e in _pod(SOFTHSM)["containers"][0]["env"]}
    assert env["HSM_DISCOVERY_DEVICE_NODE_ROOT"] == "/var/lib/hsm-devcluster/devnodes"
    assert env["HSM_DISCOVERY_DEVICE_MOUNTS"] == "/var/lib/hsm-devcluster/softhsm,/opt/vendor"
    assert env["HSM_DISCOVERY_DEVICE_ENV"] == (
        "SOFTHSM2_CONF=/var/lib/hsm-devcluster/softhsm/softhsm2.conf,TRACE=1"
    )


def test_discovery_itself_does_not_mount_what_the_device_plugin_hands_to_agents() -> None:
    paths = {v["hostPath"]["path"] for v in _pod(SOFTHSM)["volumes"] if "hostPath" in v}
    assert paths == {"/sys", "/run/udev", constants.DEVICE_PLUGIN_DIR}


def test_host_paths_are_mounted_read_only_at_the_same_path() -> None:
    pod = _pod(UMOCKDEV)
    assert pod["volumes"][4:] == [
        {"name": "host-0", "hostPath": {"path": "/run/umockdev", "type": ""}},
        {"name": "host-1", "hostPath": {"path": "/usr/lib/libumockdev-preload.so.0", "type": ""}},
    ]
    assert pod["containers"][0]["volumeMounts"][4:] == [
        {"name": "host-0", "mountPath": "/run/umockdev", "readOnly": True},
        {"name": "host-1", "mountPath": "/usr/lib/libumockdev-preload.so.0", "readOnly": True},
    ]


def test_a_host_path_marked_read_write_is_mounted_writable() -> None:
    config = discoveryspec.DiscoveryConfig(
        "hsm-discovery:dev", host_paths=("/run/umockdev", "/lib/x.so"), read_only=(False, True)
    )
    mounts = _pod(config)["containers"][0]["volumeMounts"][4:]
    assert [m["readOnly"] for m in mounts] == [False, True]


def test_service_links_stay_out_of_the_environment() -> None:
    assert _pod(UMOCKDEV)["enableServiceLinks"] is False


def test_extra_env_follows_the_specs_own_variables() -> None:
    env = _pod(UMOCKDEV)["containers"][0]["env"]
    assert env[10:] == [
        {"name": "LD_PRELOAD", "value": "/usr/lib/libumockdev-preload.so.0"},
        {"name": "UMOCKDEV_DIR", "value": "/run/umockdev"},
    ]
    assert env[9]["name"] == "HSM_DISCOVERY_DEVICE_NODE_ROOT"
