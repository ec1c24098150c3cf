"""A SmartCard-HSM on a real node: discovery finds it, the operator runs an agent on OpenSC and pcscd.

Simulated, and only these: the card is ``devcluster.schsm`` (the SmartCard-HSM commands OpenSC uses for data
objects), and the USB device discovery finds is a umockdev description. The card sits in vpcd's reader: the
agent pod's own pcscd loads vpcd (the image's test stage carries it), which listens on the pod's port 35963,
and the emulator connects to it from the node's network namespace, where a real reader's USB would be.
Everything else is what a cluster with a real device runs: discovery on the node, the device plugin, the
operator's agent Deployment with OpenSC's module and pcscd supervision, and the agent image unchanged.

The module installs the system on its OWN devcluster with one node; its steps run in order.
"""

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import build, cluster, hsmapi, kubeapi, nodes, realnodes, system, testkit, usbhsm, wait
from devcluster.schsm import sandbox
from hsm_common import constants

DEVICE = "schsm"
USB_SERIAL = "3f8a21c7d05e4b19"
"""The serial discovery reads from USB: the operator hands it to the agent as the device's serial."""
CARD_SERIAL = "DECM0100042"
"""The serial OpenSC reads from the card's device certificate: not the USB one, as on real devices."""
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
NAMESPACE = "team-card"
STEP_TIMEOUT = 90.0
VPCD_PORT = 35963
"""Where vpcd, loaded by the agent pod's pcscd, waits for a card."""


class Installed:
    def __init__(self, installed: system.System) -> None:
        self.system = installed
        self.client = installed.client
        self.run_dir = installed.cluster.run_dir
        self.card: sandbox.Card | None = None
        self.card_log = self.run_dir / "schsm.log"

    def agent(self) -> dict[str, Any] | None:
        """The device's one agent pod with its address, once it has one."""
        found = [
            pod for pod in system.device_agents(self.client, DEVICE) if pod.get("status", {}).get("podIP")
        ]
        return found[0] if len(found) == 1 else None

    def ready(self) -> bool:
        return len(system.ready_agents(self.client, DEVICE)) == 1

    def unavailable(self) -> bool:
        """The agent pod is no longer Ready (its readiness follows the token)."""
        pods = system.device_agents(self.client, DEVICE)
        return len(pods) == 1 and not system.ready_agents(self.client, DEVICE)


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Installed]:
    build.build()
    options = system.Options(
        run_dir=tmp_path_factory.mktemp("emulated-card") / "devcluster",
        repo_root=system.repo_root(),
        user_namespaces=(NAMESPACE,),
        node_count=1,
    )
    done = Installed(system.install(options))
    failed_before = request.session.testsfailed
    try:
        yield done
    finally:
        if done.card is not None:
            done.card.stop()
        if request.session.testsfailed > failed_before:
            tails = testkit.log_tails(done.run_dir)
            card_log = done.card_log.read_text()[-4000:] if done.card_log.exists() else ""
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                print(f"\n{tails}\nemulator log:\n{card_log}", flush=True)
        cluster.down(done.run_dir)


def _api(installed: Installed) -> hsmapi.HsmApi:
    return installed.system.api


def test_the_operator_starts_an_agent_on_opensc_for_the_discovered_card(installed: Installed) -> None:
    node = nodes.name(1)
    description = installed.run_dir / "devices" / "schsm.umockdev"
    description.write_text(usbhsm.description(usbhsm.SMARTCARD_HSM, USB_SERIAL))
    installed.system.testbed(node).add(description)
    installed.client.request(
        "POST",
        f"{system.GROUP_PATH}/namespaces/{system.NAMESPACE}/hsmdevices",
        {
            "apiVersion": "hsm.j5t.io/v1alpha1",
            "kind": "HSMDevice",
            "metadata": {"name": DEVICE, "namespace": system.NAMESPACE},
            "spec": {
                "deviceType": "SmartCardHSM",
                "discovery": {"usb": [usbhsm.SMARTCARD_HSM.usb_ids()]},
                "pkcs11": {"libraryPath": OPENSC, "pinSecret": {"name": system.PIN_SECRET, "key": "pin"}},
            },
        },
    )
    pod = wait.until(installed.agent, STEP_TIMEOUT, "an agent pod with an address for the card's device")
    args = pod["spec"]["containers"][0]["args"]
    assert f"--pkcs11-library={OPENSC}" in args
    assert f"--serial={USB_SERIAL}" in args
    # No card in the reader yet: the agent runs, pcscd with it, but it has no token to serve.
    assert not installed.ready()


def test_the_agent_becomes_ready_once_the_card_is_in_the_reader(installed: Installed) -> None:
    pod = installed.agent()
    assert pod is not None
    pin_file = installed.run_dir / "schsm.pin"
    pin_file.write_text(system.PIN + "\n")
    installed.card = sandbox.Card(
        realnodes.NodeNetwork(installed.run_dir),
        installed.run_dir / "schsm.flash",
        installed.card_log,
        f"--serial={CARD_SERIAL}",
        f"--pin-file={pin_file}",
        "--label=emulated",
        f"--host={pod['status']['podIP']}",
        f"--port={VPCD_PORT}",
    )
    installed.card.start()
    wait.until(installed.ready, STEP_TIMEOUT, "the card's agent Ready")
    wait.until(
        lambda: system.pool(installed.client, DEVICE).get("phase") == "Ready",
        STEP_TIMEOUT,
        "the card's HSMPool Ready",
    )


def test_each_devices_discovery_pod_reports_and_serves_its_own_device_alone(installed: Installed) -> None:
    """Two HSMDevices on one node run two discovery pods: each must leave the other's plugin socket alone."""
    reported = {}
    for pod in system.pods(installed.client, "discovery"):
        annotations = pod["metadata"].get("annotations") or {}
        device = pod["metadata"]["labels"][system.LABEL_DEVICE]
        reported[device] = sorted(json.loads(annotations[constants.ANNOTATION_DEVICE_REPORT])["devices"])
    assert reported == {system.DEVICE: [system.DEVICE], DEVICE: [DEVICE]}


def test_a_secret_written_to_the_card_reads_back_and_syncs_into_a_secret(installed: Installed) -> None:
    api = _api(installed)
    encoded = {"password": "b25jYXJk"}  # "oncard"
    api.call("PUT", f"/hsm/secrets/{NAMESPACE}/db?device={DEVICE}", {"data": encoded})
    found = api.call("GET", f"/hsm/secrets/{NAMESPACE}/db?device={DEVICE}")
    assert found["data"] == encoded
    installed.client.request(
        "POST",
        f"{system.GROUP_PATH}/namespaces/{NAMESPACE}/hsmsecrets",
        {
            "apiVersion": "hsm.j5t.io/v1alpha1",
            "kind": "HSMSecret",
            "metadata": {"name": "db", "namespace": NAMESPACE},
            "spec": {"device": DEVICE},
        },
    )

    def synced() -> bool:
        try:
            secret = installed.client.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/db")
        except kubeapi.ApiError:
            return False
        return bool(secret.get("data") == encoded)

    wait.until(synced, STEP_TIMEOUT, "the Secret synced from the card")


def test_a_removed_card_makes_the_agent_unavailable_and_its_return_restores_it(installed: Installed) -> None:
    assert installed.card is not None
    installed.card.remove()
    wait.until(installed.unavailable, STEP_TIMEOUT, "the agent to stop being Ready without its card")
    with pytest.raises(hsmapi.ApiCallError) as refused:
        _api(installed).call("GET", f"/hsm/secrets/{NAMESPACE}/db?device={DEVICE}")
    # An outage, to retry later: not "no such device".
    assert refused.value.status == 503
    assert "none is Ready" in str(refused.value)
    installed.card.insert()

    def reads_back() -> bool:
        try:
            found = _api(installed).call("GET", f"/hsm/secrets/{NAMESPACE}/db?device={DEVICE}")
        except hsmapi.ApiCallError as error:
            # vpcd may drop a connection the card made before it noticed the removal: the card then
            # connects again, and the agent sees one more removal and return. Anything but 503 is a failure.
            if error.status != 503:
                raise
            return False
        return bool(found["data"] == {"password": "b25jYXJk"})

    wait.until(reads_back, STEP_TIMEOUT, "the secret read back from the card once it is back")
