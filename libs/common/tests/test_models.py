import datetime

import pydantic
import pytest

from hsm_common import models, report


def device_spec(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "deviceType": "PicoHSM",
        "discovery": {"usb": [{"vendorId": "20a0", "productId": "4230"}]},
        "pkcs11": {"libraryPath": "/usr/lib/opensc-pkcs11.so", "pinSecret": {"name": "pin", "key": "pin"}},
    }
    spec.update(overrides)
    return spec


def test_hsmsecret_defaults_follow_the_architecture() -> None:
    spec = models.HSMSecretSpec.model_validate({})
    assert spec.secret_type == "Opaque"
    assert spec.auto_sync is True
    assert spec.deletion_policy is models.DeletionPolicy.DELETE
    assert spec.effective_secret_name("db") == "db"
    assert spec.effective_path("team", "db") == "team/db"


def test_hsm_path_is_always_inside_the_namespace() -> None:
    spec = models.HSMSecretSpec.model_validate({"hsmPath": "prod/db"})
    assert spec.effective_path("team", "ignored") == "team/prod/db"


@pytest.mark.parametrize("bad", ["../b/x", "/abs", "Upper", "a//b"])
def test_escaping_hsm_paths_are_rejected_with_field_and_rule(bad: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        models.HSMSecretSpec.model_validate({"hsmPath": bad})
    error = caught.value.errors()[0]
    assert error["loc"] == ("hsmPath",)
    assert error["type"] == "string_pattern_mismatch"


def test_wrong_types_name_the_field() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        models.HSMSecretSpec.model_validate({"autoSync": "maybe"})
    assert caught.value.errors()[0]["loc"] == ("autoSync",)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        models.HSMSecretSpec.model_validate({"secretNmae": "typo"})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_hsmdevice_parses_camel_case_and_rejects_bad_usb_ids() -> None:
    spec = models.HSMDeviceSpec.model_validate(device_spec())
    assert spec.discovery.usb[0].vendor_id == "20a0"
    assert spec.pkcs11.pin_secret.key == "pin"
    with pytest.raises(pydantic.ValidationError) as caught:
        models.HSMDeviceSpec.model_validate(
            device_spec(discovery={"usb": [{"vendorId": "xyz", "productId": "1"}]})
        )
    locations = {error["loc"] for error in caught.value.errors()}
    assert ("discovery", "usb", 0, "vendorId") in locations


def pkcs11(**extra: object) -> dict[str, object]:
    return {"libraryPath": "/usr/lib/opensc-pkcs11.so", "pinSecret": {"name": "pin", "key": "pin"}, **extra}


def test_the_object_budget_and_size_belong_to_pkcs11() -> None:
    spec = models.HSMDeviceSpec.model_validate(device_spec(pkcs11=pkcs11(maxObjects=40, maxObjectSize=2048)))
    assert (spec.pkcs11.max_objects, spec.pkcs11.max_object_size) == (40, 2048)
    with pytest.raises(pydantic.ValidationError):
        models.HSMDeviceSpec.model_validate(device_spec(maxObjectSize=2048))


@pytest.mark.parametrize(
    ("field", "value"),
    [("maxObjects", 1), ("maxObjects", 1_000_001), ("maxObjectSize", 1023), ("maxObjectSize", 2**26 + 1)],
)
def test_an_object_budget_or_size_out_of_range_is_refused(field: str, value: int) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        models.HSMDeviceSpec.model_validate(device_spec(pkcs11=pkcs11(**{field: value})))
    assert {error["loc"] for error in caught.value.errors()} == {("pkcs11", field)}


def test_pool_grace_period_defaults_to_five_minutes_and_checks_its_format() -> None:
    assert models.HSMPoolSpec.model_validate({}).grace_period == "5m"
    with pytest.raises(pydantic.ValidationError):
        models.HSMPoolSpec.model_validate({"gracePeriod": "five minutes"})


def test_status_round_trips_through_the_wire_form() -> None:
    status = models.HSMSecretStatus(
        sync_status=models.SyncStatus.IN_SYNC,
        hsm_version=3,
        conditions=[
            models.Condition(type="Ready", status=models.ConditionStatus.TRUE, reason="SecretSynced")
        ],
    )
    wire = status.to_wire()
    assert wire["syncStatus"] == "InSync"
    assert wire["conditions"][0]["status"] == "True"
    assert "lastError" not in wire
    assert models.HSMSecretStatus.model_validate(wire) == status


def test_device_report_round_trips() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    device = report.ReportedDevice(
        device_path="/dev/bus/usb/001/015",
        serial_number="DC6A33145E23A42A",
        vendor_id="20a0",
        product_id="4230",
        available=True,
        last_seen=now,
    )
    doc = report.DeviceReport(
        node_name="n1", report_time=now, devices={"pico": report.DeviceEntry(devices=[device])}
    )
    wire = doc.to_wire()
    assert wire["devices"]["pico"]["devices"][0]["serialNumber"] == "DC6A33145E23A42A"
    assert report.DeviceReport.model_validate(wire) == doc


def test_a_target_with_a_template_and_a_selection_parses_from_camel_case() -> None:
    spec = models.HSMSecretSpec.model_validate(
        {
            "data": [{"secretKey": "DB_USER", "key": "username"}],
            "target": {
                "labels": {"team": "db"},
                "type": "kubernetes.io/basic-auth",
                "immutable": True,
                "template": {"data": {"URL": "{{ values.DB_USER }}"}, "mergePolicy": "Merge"},
            },
        }
    )
    assert spec.data is not None
    assert spec.data[0].secret_key == "DB_USER"
    assert spec.effective_secret_type() == "kubernetes.io/basic-auth"
    assert spec.shaped()


def test_a_plain_spec_and_one_with_only_a_type_are_not_shaped() -> None:
    assert not models.HSMSecretSpec().shaped()
    assert not models.HSMSecretSpec.model_validate({"target": {"type": "kubernetes.io/tls"}}).shaped()


@pytest.mark.parametrize(
    "target",
    [
        {"labels": {"app.kubernetes.io/managed-by": "me"}},
        {"labels": {"hsm.j5t.io/hsmsecret": "other"}},
        {"annotations": {"hsm.j5t.io/data-mac": "forged"}},
    ],
)
def test_the_operators_own_labels_and_annotations_are_refused(target: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError, match="the operator writes these itself"):
        models.HSMSecretSpec.model_validate({"target": target})


def test_two_different_types_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"target\.type and secretType differ"):
        models.HSMSecretSpec.model_validate({"secretType": "Opaque", "target": {"type": "kubernetes.io/tls"}})


def test_a_secret_key_selected_twice_is_refused() -> None:
    twice = [{"secretKey": "a", "key": "x"}, {"secretKey": "a", "key": "y"}]
    with pytest.raises(pydantic.ValidationError, match="secretKey a is given more than once"):
        models.HSMSecretSpec.model_validate({"data": twice})


def test_a_template_for_an_invalid_secret_key_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="is invalid"):
        models.HSMSecretSpec.model_validate({"target": {"template": {"data": {"a b": "x"}}}})


def test_data_from_paths_follow_hsm_path_in_order() -> None:
    spec = models.HSMSecretSpec.model_validate(
        {"hsmPath": "db", "dataFrom": [{"hsmPath": "a"}, {"hsmPath": "b"}]}
    )
    assert spec.effective_paths("team", "x") == ["team/db", "team/a", "team/b"]


def test_data_from_alone_replaces_the_default_path() -> None:
    spec = models.HSMSecretSpec.model_validate({"dataFrom": [{"hsmPath": "a"}]})
    assert spec.effective_paths("team", "x") == ["team/a"]
    assert spec.shaped()


def test_without_data_from_the_one_path_is_the_default() -> None:
    assert models.HSMSecretSpec().effective_paths("team", "x") == ["team/x"]
