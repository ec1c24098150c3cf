import pytest

from hsm_common import constants
from hsm_manager import __main__ as cli
from hsm_manager.api import config as api_config
from hsm_manager.operator import config, podextras


def config_of(*argv: str) -> config.OperatorConfig:
    return config.from_args(cli.build_parser().parse_args(["operator", *argv]))


def api_config_of(*argv: str) -> api_config.ApiConfig:
    return api_config.from_args(cli.build_parser().parse_args(["api", *argv]))


def test_operator_flags_default_to_the_config_defaults() -> None:
    assert config_of() == config.OperatorConfig()


def test_api_flags_default_to_the_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    assert api_config_of() == api_config.ApiConfig()


def test_the_api_serves_the_devices_of_its_own_namespace_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "hsm-here")
    assert api_config_of().device_namespace == "hsm-here"
    assert api_config_of("--device-namespace=hsm-there").device_namespace == "hsm-there"


def test_api_settings_come_from_flags_or_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_MANAGER_KUBECONFIG", "/etc/hsm/kubeconfig")
    monkeypatch.setenv("HSM_MANAGER_CALL_TIMEOUT", "2500ms")
    cfg = api_config_of("--workers=3")
    assert (cfg.kubeconfig, cfg.call_timeout, cfg.workers) == ("/etc/hsm/kubeconfig", 2.5, 3)


def test_operator_runs_without_extras_and_the_kubelets_own_paths_by_default() -> None:
    cfg = config_of()
    assert cfg.discovery_extras == podextras.PodExtras()
    assert (cfg.device_mounts, cfg.device_env) == ((), ())
    assert (cfg.device_node_root, cfg.device_plugin_dir) == ("/", constants.DEVICE_PLUGIN_DIR)


def test_flags_give_the_device_plugin_and_discovery_pods_their_own_extras() -> None:
    cfg = config_of(
        "--device-mounts=/var/lib/softhsm",
        "--device-env=SOFTHSM2_CONF=/var/lib/softhsm/softhsm2.conf",
        "--device-node-root=/var/lib/devnodes",
        "--device-plugin-dir=/var/lib/k0s/kubelet/device-plugins",
        "--discovery-host-paths=/run/umockdev",
        "--discovery-env=UMOCKDEV_DIR=/run/umockdev",
    )
    assert cfg.device_mounts == ("/var/lib/softhsm",)
    assert cfg.device_env == (("SOFTHSM2_CONF", "/var/lib/softhsm/softhsm2.conf"),)
    assert cfg.device_node_root == "/var/lib/devnodes"
    assert cfg.device_plugin_dir == "/var/lib/k0s/kubelet/device-plugins"
    assert cfg.discovery_extras.host_paths == ("/run/umockdev",)
    assert cfg.discovery_extras.env == (("UMOCKDEV_DIR", "/run/umockdev"),)


def test_environment_variables_set_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_MANAGER_DEVICE_MOUNTS", "/a,/b")
    monkeypatch.setenv("HSM_MANAGER_DEVICE_ENV", "SOFTHSM2_CONF=/a/softhsm2.conf")
    monkeypatch.setenv("HSM_MANAGER_DEVICE_NODE_ROOT", "/var/lib/devnodes")
    monkeypatch.setenv("HSM_MANAGER_DISCOVERY_ENV", "LD_PRELOAD=/usr/lib/libumockdev-preload.so.0")
    cfg = config_of()
    assert cfg.device_mounts == ("/a", "/b")
    assert cfg.device_env == (("SOFTHSM2_CONF", "/a/softhsm2.conf"),)
    assert cfg.device_node_root == "/var/lib/devnodes"
    assert cfg.discovery_extras.env == (("LD_PRELOAD", "/usr/lib/libumockdev-preload.so.0"),)


def test_a_device_mount_over_the_agents_own_mount_is_refused() -> None:
    with pytest.raises(ValueError, match="--device-mounts: '/tmp' is already a mount point"):
        config_of("--device-mounts=/tmp")


def test_a_relative_device_node_root_is_refused() -> None:
    with pytest.raises(ValueError, match="--device-node-root: 'devnodes' is not an absolute"):
        config_of("--device-node-root=devnodes")


def test_agents_run_as_root_only_when_told() -> None:
    assert config_of().agent_run_as_root is False
    assert config_of("--agent-run-as-root=true").agent_run_as_root is True


def test_an_invalid_setting_stops_the_operator_with_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["operator", "--discovery-env=POD_IP=1.2.3.4"])
    assert exited.value.code == 2
    assert "--discovery-env: POD_IP is set by the operator itself" in capsys.readouterr().err


def test_the_ca_rotation_settings_come_from_flags() -> None:
    given = config_of("--ca-renew-fraction=0.5", "--ca-rotation-interval=10s")
    assert (given.ca_renew_fraction, given.ca_rotation_interval) == (0.5, 10.0)
