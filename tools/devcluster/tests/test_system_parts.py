"""The pieces system.install is made of that need no cluster: tokens, device descriptions, settings."""

import pathlib

from devcluster import realnodes, softhsm, system, testbed, usbhsm

SLOTS = """Available slots:
Slot 1
    Slot info:
        Token present:    yes
    Token info:
        Label:            node-1-token
        Serial number:    1111aaaa2222bbbb
Slot 2
    Token info:
        Label:            node-2-token
        Serial number:    3333cccc4444dddd
"""


def test_serial_of_finds_the_token_by_its_exact_label() -> None:
    assert softhsm.serial_of(SLOTS, "node-2-token") == "3333cccc4444dddd"
    assert softhsm.serial_of(SLOTS, "node") is None


def test_a_new_token_reports_the_serial_softhsm_lists(tmp_path: pathlib.Path) -> None:
    conf = softhsm.write_conf(tmp_path / "softhsm")
    serial = softhsm.init_token(conf, "node-token", system.PIN, system.SO_PIN)
    assert len(serial) == 16
    assert softhsm.init_token(conf, "other-token", system.PIN, system.SO_PIN) != serial


def test_pico_description_carries_the_serial_as_usb_serial() -> None:
    text = usbhsm.description(usbhsm.PICO_HSM, "3333cccc4444dddd")
    assert "A: serial=3333cccc4444dddd" in text.splitlines()
    assert "E: ID_SERIAL_SHORT=3333cccc4444dddd" in text.splitlines()
    assert testbed.sys_paths(text) == [usbhsm.PICO_HSM.sys_path]


def test_cluster_settings_give_every_node_a_testbed_and_the_images(tmp_path: pathlib.Path) -> None:
    options = system.Options(run_dir=tmp_path, repo_root=tmp_path)
    archives = (tmp_path / "pause.tar", tmp_path / "agent.tar")
    settings = system.cluster_settings(options, archives, "pause:1")
    assert settings.testbed_nodes == ("node-1", "node-2")
    assert (settings.images, settings.sandbox_image) == (archives, "pause:1")


def test_each_node_has_its_own_token_store_owned_by_the_agents(tmp_path: pathlib.Path) -> None:
    host_conf = realnodes.softhsm_store(tmp_path, "node-1")
    in_node = (host_conf.parent / "softhsm2.conf").read_text()
    assert "directories.tokendir = /var/lib/hsm-devcluster/softhsm/tokens" in in_node
    assert f"directories.tokendir = {host_conf.parent / 'tokens'}" in host_conf.read_text()
    assert (host_conf.parent / "tokens").stat().st_uid == realnodes.AGENT_UID


def test_repo_root_holds_the_kustomizations() -> None:
    assert (system.repo_root() / "deploy" / "kustomize" / "overlays" / "e2e").is_dir()
