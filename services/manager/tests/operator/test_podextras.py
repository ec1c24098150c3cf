import pytest

from hsm_manager.decide import agentspec, discoveryspec
from hsm_manager.operator import podextras


def test_empty_settings_add_nothing() -> None:
    assert podextras.parse("", "") == podextras.PodExtras((), ())


def test_paths_and_env_keep_their_order_and_skip_blank_entries() -> None:
    extras = podextras.parse(
        " /var/lib/softhsm/tokens, /etc/softhsm2.conf ,", "SOFTHSM2_CONF=/etc/softhsm2.conf,EMPTY="
    )
    assert extras.host_paths == ("/var/lib/softhsm/tokens", "/etc/softhsm2.conf")
    assert extras.env == (("SOFTHSM2_CONF", "/etc/softhsm2.conf"), ("EMPTY", ""))


def test_a_value_may_contain_equals_signs() -> None:
    assert podextras.parse("", "OPTS=a=b").env == (("OPTS", "a=b"),)


def test_a_relative_path_is_refused() -> None:
    with pytest.raises(ValueError, match="'var/lib' is not an absolute path"):
        podextras.parse("var/lib", "")


@pytest.mark.parametrize("path", ["/var/../lib", "/var/./lib", "/var//lib", "/var/lib/", "//var", "/"])
def test_an_unnormalized_path_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="is not normalized"):
        podextras.parse(path, "")


def test_a_duplicate_path_is_refused() -> None:
    with pytest.raises(ValueError, match="'/opt/hsm' is listed twice"):
        podextras.parse("/opt/hsm,/opt/hsm", "")


def test_a_path_the_pod_mounts_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="'/sys' is already a mount point"):
        podextras.parse("/sys", "", taken_paths=("/sys", "/run/udev"))


def test_an_entry_without_equals_is_refused() -> None:
    with pytest.raises(ValueError, match="'LD_PRELOAD' is not NAME=VALUE"):
        podextras.parse("", "LD_PRELOAD")


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", ""])
def test_a_name_that_is_no_c_identifier_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a valid name"):
        podextras.parse("", f"{name}=x")


@pytest.mark.parametrize("name", sorted(discoveryspec.OWN_ENV))
def test_a_variable_the_discovery_spec_sets_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} is set by the operator itself"):
        podextras.parse("", f"{name}=x", reserved_env=discoveryspec.OWN_ENV)


def test_a_variable_the_agent_spec_sets_is_refused_for_the_device_plugin() -> None:
    with pytest.raises(ValueError, match="--device-env: POD_IP is set by the operator itself"):
        podextras.variables("POD_IP=1.2.3.4", "--device-env", agentspec.OWN_ENV)


def test_a_duplicate_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="UMOCKDEV_DIR is listed twice"):
        podextras.parse("", "UMOCKDEV_DIR=/a,UMOCKDEV_DIR=/b")


def test_messages_name_the_setting_they_came_from() -> None:
    with pytest.raises(ValueError, match=r"^--discovery-env: "):
        podextras.parse("", "1=x", names=("--discovery-host-paths", "--discovery-env"))


def test_a_mode_suffix_picks_read_only_or_read_write_per_path() -> None:
    extras = podextras.parse("/a:rw,/b:ro,/c", "", read_only_default=True)
    assert extras.host_paths == ("/a", "/b", "/c")
    assert extras.read_only == (False, True, True)
    assert podextras.parse("/c", "").read_only == (False,)


def test_a_path_listed_twice_with_different_modes_is_refused() -> None:
    with pytest.raises(ValueError, match="'/a' is listed twice"):
        podextras.parse("/a:ro,/a:rw", "")


def test_device_mounts_keep_their_order_and_skip_blank_entries() -> None:
    assert podextras.mounts("/var/lib/softhsm, /opt/vendor ,", "--device-mounts") == (
        "/var/lib/softhsm",
        "/opt/vendor",
    )


def test_a_device_mount_with_a_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="always mounted read-write"):
        podextras.mounts("/var/lib/softhsm:ro", "--device-mounts")


def test_a_device_mount_over_the_agents_own_mount_is_refused() -> None:
    with pytest.raises(ValueError, match="'/run/pcscd' is already a mount point"):
        podextras.mounts("/run/pcscd", "--device-mounts", agentspec.MOUNT_PATHS)


@pytest.mark.parametrize("path", ["/", "/var/lib/hsm/devnodes"])
def test_a_node_path_may_be_the_root(path: str) -> None:
    assert podextras.node_path(path, "--device-node-root") == path


@pytest.mark.parametrize("path", ["", "devnodes", "/var/lib/", "/var//lib", "/var/../lib"])
def test_a_node_path_must_be_absolute_and_normalized(path: str) -> None:
    with pytest.raises(ValueError, match=r"^--device-node-root: .* is not an absolute, normalized path"):
        podextras.node_path(path, "--device-node-root")
