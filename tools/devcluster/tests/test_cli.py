"""The command line parses every subcommand's options without clobbering the subcommand."""

import pathlib

import pytest

from devcluster import __main__ as cli


def test_up_options_keep_the_subcommand() -> None:
    args = cli._parser().parse_args(["up", "--nodes", "3", "--timeout", "5"])
    assert args.command == "up"
    assert (args.nodes, args.timeout) == (3, 5.0)


def test_status_without_a_cluster_fails(tmp_path: pathlib.Path) -> None:
    assert cli.main(["--run-dir", str(tmp_path), "status"]) == 1


def test_env_without_a_cluster_fails(tmp_path: pathlib.Path) -> None:
    assert cli.main(["--run-dir", str(tmp_path), "env"]) == 1


def test_device_add_keeps_node_and_file() -> None:
    args = cli._parser().parse_args(["device", "add", "node-2", "/tmp/pico.umockdev"])
    assert (args.command, args.device_command, args.node) == ("device", "add", "node-2")
    assert args.file == pathlib.Path("/tmp/pico.umockdev")


def test_device_remove_without_a_testbed_fails(tmp_path: pathlib.Path) -> None:
    assert cli.main(["--run-dir", str(tmp_path), "device", "remove", "node-1", "/sys/devices/x"]) == 1


def test_demo_down_without_a_demo_says_so(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--run-dir", str(tmp_path), "demo-down"]) == 0
    assert "no demo running" in capsys.readouterr().out


def test_up_takes_testbed_nodes() -> None:
    args = cli._parser().parse_args(["up", "--testbed", "node-1", "--testbed", "node-2"])
    assert args.testbeds == ["node-1", "node-2"]
