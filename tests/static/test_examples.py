"""The examples under deploy/examples are valid against the models the CRDs are generated from."""

import pathlib

import pytest
import yaml

from hsm_common import constants, models
from hsm_manager.gateway import pki

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "examples"
SPECS = {constants.KIND_DEVICE: models.HSMDeviceSpec, constants.KIND_SECRET: models.HSMSecretSpec}


def documents() -> list[dict[str, object]]:
    return [
        doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def test_there_is_an_example_of_each_resource() -> None:
    kinds = {doc["kind"] for doc in documents()}
    assert {constants.KIND_DEVICE, constants.KIND_SECRET, "Secret"} <= kinds


@pytest.mark.parametrize("doc", [d for d in documents() if d["kind"] in SPECS], ids=lambda d: str(d["kind"]))
def test_custom_resources_validate(doc: dict[str, object]) -> None:
    assert doc["apiVersion"] == constants.API_VERSION
    SPECS[str(doc["kind"])].model_validate(doc["spec"])


def test_the_device_refers_to_the_pin_secret_example() -> None:
    device = next(d for d in documents() if d["kind"] == constants.KIND_DEVICE)
    secret = next(d for d in documents() if d["kind"] == "Secret")
    spec = models.HSMDeviceSpec.model_validate(device["spec"])
    assert spec.pkcs11.pin_secret.name == secret["metadata"]["name"]  # type: ignore[index]
    assert spec.pkcs11.pin_secret.key in secret["stringData"]  # type: ignore[operator]


def test_the_service_monitor_verifies_every_component_with_the_published_ca() -> None:
    monitor = next(d for d in documents() if d["kind"] == "ServiceMonitor")
    [endpoint] = monitor["spec"]["endpoints"]  # type: ignore[index]
    tls = endpoint["tlsConfig"]
    assert "insecureSkipVerify" not in tls
    assert tls["ca"] == {"configMap": {"name": pki.METRICS_CA_CONFIGMAP, "key": pki.API_CA_KEY}}
    namespace = monitor["metadata"]["namespace"]  # type: ignore[index]
    assert tls["serverName"] in pki.metrics_names(namespace)
