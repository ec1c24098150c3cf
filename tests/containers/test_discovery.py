"""The discovery image scanning a umockdev testbed mounted from the host: it reports the mocked Pico HSM."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from testcontainers.core import container as tc_container

PRELOAD = "/usr/lib/x86_64-linux-gnu/libumockdev-preload.so.0"
"""Debian's libumockdev0 on the host; the image is Debian bookworm too, so it loads there as well."""
PICO_IDS = {"vendorId": "20A0", "productId": "4230"}


def hsm_device(name: str, discovery: dict[str, Any]) -> dict[str, Any]:
    """An HSMDevice as the API server returns it, as discovery's --devices-file takes it."""
    pkcs11 = {"libraryPath": "/usr/lib/libsc-hsm-pkcs11.so", "pinSecret": {"name": "pin", "key": "pin"}}
    return {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMDevice",
        "metadata": {"name": name},
        "spec": {"deviceType": "PicoHSM", "pkcs11": pkcs11, "discovery": discovery},
    }


@pytest.fixture(scope="module")
def report(
    new_container: Callable[[str], tc_container.DockerContainer],
    pico_testbed: Any,
    tmp_path_factory: pytest.TempPathFactory,
    container_logs: Callable[[tc_container.DockerContainer], str],
) -> dict[str, Any]:
    """The report of one ``hsm-discovery --once`` run in the image, against the Pico testbed."""
    given, out = tmp_path_factory.mktemp("given"), tmp_path_factory.mktemp("out")
    (given / "devices.json").write_text(
        json.dumps([hsm_device("pico", {"usb": [PICO_IDS]}), hsm_device("auto", {"autoDiscovery": True})])
    )
    # The image runs as an unprivileged user: let it read the input and write the report.
    given.chmod(0o755)
    out.chmod(0o777)
    container = (
        new_container("discovery")
        .with_volume_mapping(PRELOAD, PRELOAD, mode="ro")
        .with_volume_mapping(pico_testbed.root, str(pico_testbed.root), mode="ro")
        .with_volume_mapping(given, "/hsm-test/given", mode="ro")
        .with_volume_mapping(out, "/hsm-test/out", mode="rw")
        .with_env("LD_PRELOAD", PRELOAD)
        .with_env("UMOCKDEV_DIR", str(pico_testbed.root))
        .with_env("NODE_NAME", "containers-node")
        .with_command(
            [
                "--once",
                "--devices-file=/hsm-test/given/devices.json",
                "--report-file=/hsm-test/out/report.json",
            ]
        )
    )
    with container:
        code = container.wait()
        logs = container_logs(container)
    assert code == 0, f"hsm-discovery --once exited {code}:\n{logs}"
    return dict(json.loads((out / "report.json").read_text()))


def test_the_mocked_pico_hsm_is_found_by_its_usb_ids(report: dict[str, Any], pico_testbed: Any) -> None:
    [pico] = report["devices"]["pico"]["devices"]
    assert (pico["vendorId"], pico["productId"]) == ("20a0", "4230")
    assert pico["serialNumber"] == pico_testbed.serial


def test_auto_discovery_knows_the_pico_hsm(report: dict[str, Any], pico_testbed: Any) -> None:
    found = [d["serialNumber"] for d in report["devices"]["auto"]["devices"]]
    assert found == [pico_testbed.serial]


def test_the_report_names_the_node_from_the_environment(report: dict[str, Any]) -> None:
    assert report["nodeName"] == "containers-node"
