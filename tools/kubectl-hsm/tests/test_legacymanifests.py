"""Converting the Go operator's HSMSecret/HSMDevice/HSMPool manifests: what carries over, what is reported."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jsonschema_rs
import pytest
import yaml

from kubectl_hsm import _gorules, cli, legacymanifests

DATA = pathlib.Path(__file__).resolve().parent / "data" / "go-operator"
REPO = pathlib.Path(__file__).resolve().parents[3]
CRDS = REPO / "deploy" / "kustomize" / "base" / "crds"
EXAMPLES = REPO / "deploy" / "examples"


def _strict(schema: Any) -> Any:
    """schema refusing unknown fields wherever it lists fields, as kubectl's strict validation does."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema_rs.Draft4Validator]:
    """Our CRDs' openAPIV3Schema per kind, strict about unknown fields."""
    found = {}
    for path in CRDS.glob("hsm*.yaml"):
        crd = yaml.safe_load(path.read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        found[crd["spec"]["names"]["kind"]] = jsonschema_rs.Draft4Validator(_strict(schema))
    assert set(found) == set(legacymanifests.KINDS)
    return found


def test_every_field_of_our_hsmsecret_spec_is_kept() -> None:
    crd = yaml.safe_load((CRDS / "hsmsecrets.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(_gorules.SECRET_FIELDS) == set(spec)


def _objects(conversion: legacymanifests.Conversion) -> list[dict[str, Any]]:
    out = []
    for doc in conversion.documents:
        body = doc.body
        items = body["items"] if isinstance(body, dict) and body.get("kind") == "List" else [body]
        out += [i for i in items if isinstance(i, dict) and i.get("kind") in legacymanifests.KINDS]
    return out


def _named(conversion: legacymanifests.Conversion, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in _objects(conversion) if o["kind"] == kind and o["metadata"]["name"] == name)


def _diffs(conversion: legacymanifests.Conversion, obj: str) -> dict[str, legacymanifests.Action]:
    return {d.field: d.action for d in conversion.differences if d.object == obj}


def _needs_decision(conversion: legacymanifests.Conversion, obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    name = f"{obj['kind']} {meta['namespace']}/{meta['name']}"
    return any(d.object == name and d.action is legacymanifests.Action.DECIDE for d in conversion.differences)


@pytest.mark.parametrize("scenario", ["single", "old-layout", "decisions"])
def test_every_converted_object_without_a_decision_is_accepted_by_our_crds(
    scenario: str, validators: dict[str, jsonschema_rs.Draft4Validator]
) -> None:
    conversion = legacymanifests.convert_dir(DATA / scenario)
    checked = 0
    for obj in _objects(conversion):
        if _needs_decision(conversion, obj):
            continue
        errors = [str(e) for e in validators[obj["kind"]].iter_errors(obj)]
        assert errors == [], f"{obj['kind']} {obj['metadata']['name']}: {errors}"
        checked += 1
    assert checked > 0


def test_objects_needing_a_decision_are_refused_by_our_crds_until_it_is_made(
    validators: dict[str, jsonschema_rs.Draft4Validator],
) -> None:
    conversion = legacymanifests.convert_dir(DATA / "decisions")
    devices = [o for o in _objects(conversion) if o["kind"] == "HSMDevice"]
    assert all(_needs_decision(conversion, o) for o in devices)
    assert all(not validators["HSMDevice"].is_valid(o) for o in devices)


def test_a_manifest_that_already_fits_stays_unchanged() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    doc = next(d for d in conversion.documents if d.file == "apps/secrets.yaml" and d.index == 1)
    assert not doc.changed
    assert _diffs(conversion, "HSMSecret production/api-keys") == {}
    assert "HSMSecret production/api-keys (apps/secrets.yaml): unchanged" in legacymanifests.render_report(
        conversion
    )


def test_our_own_examples_pass_through_unchanged() -> None:
    conversion = legacymanifests.convert_dir(EXAMPLES)
    assert not any(d.changed for d in conversion.documents)
    # hsmPath exists in both schemas, so it is always pointed out: ours is below the namespace.
    assert {(d.field, d.action) for d in conversion.differences} == {
        ("spec.hsmPath", legacymanifests.Action.CHECK)
    }


def test_the_newest_go_device_layout_is_converted() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    spec = _named(conversion, "HSMDevice", "smartcard-hsm")["spec"]
    assert spec["deviceType"] == "SmartCardHSM"
    assert spec["discovery"]["usb"] == [
        {"vendorId": "04e6", "productId": "5816", "serialNumber": "DECC0100123"}
    ]
    assert spec["pkcs11"]["pinSecret"] == {"name": "smartcard-hsm-pin", "key": "pin"}
    assert "mirroring" not in spec
    diffs = _diffs(conversion, "HSMDevice hsm-secrets-operator-system/smartcard-hsm")
    assert diffs["spec.mirroring"] is legacymanifests.Action.DROPPED


def test_the_oldest_go_device_layout_is_moved_into_discovery_and_pkcs11() -> None:
    conversion = legacymanifests.convert_dir(DATA / "old-layout")
    spec = _named(conversion, "HSMDevice", "pico-hsm")["spec"]
    assert spec["discovery"] == {"usb": [{"vendorId": "20a0", "productId": "4230"}]}
    assert spec["pkcs11"]["libraryPath"] == "/usr/local/lib/libsc-hsm-pkcs11.so"
    assert "pkcs11LibraryPath" not in spec
    assert "usb" not in spec
    diffs = _diffs(conversion, "HSMDevice hsm-secrets-operator-system/pico-hsm")
    assert diffs["spec.pkcs11.libraryPath"] is legacymanifests.Action.CHECK


def test_a_device_type_alone_becomes_the_usb_ids_go_matched_for_it() -> None:
    conversion = legacymanifests.convert_dir(DATA / "decisions")
    spec = _named(conversion, "HSMDevice", "pico-hsm")["spec"]
    assert spec["discovery"]["usb"] == [{"vendorId": "20a0", "productId": "4230"}]


def test_go_only_secret_fields_are_dropped_and_reported() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    spec = _named(conversion, "HSMSecret", "database-credentials")["spec"]
    assert "parentRef" not in spec
    assert spec["syncInterval"] == 10
    diffs = _diffs(conversion, "HSMSecret production/database-credentials")
    assert diffs == {
        "spec.parentRef": legacymanifests.Action.DROPPED,
        "spec.syncInterval": legacymanifests.Action.CONVERTED,
    }


def test_an_exported_list_loses_server_fields_status_and_the_go_finalizer() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    obj = _named(conversion, "HSMSecret", "payments")
    assert obj["metadata"] == {
        "name": "payments",
        "namespace": "billing",
        "annotations": {"team": "payments"},
    }
    assert "status" not in obj
    diffs = _diffs(conversion, "HSMSecret billing/payments")
    assert diffs["metadata.finalizers"] is legacymanifests.Action.DROPPED
    assert diffs["status"] is legacymanifests.Action.DROPPED


def test_a_pool_keeps_its_grace_period_and_loses_device_refs() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    assert _named(conversion, "HSMPool", "smartcard-hsm-pool")["spec"] == {"gracePeriod": "5m0s"}
    diffs = _diffs(conversion, "HSMPool hsm-secrets-operator-system/smartcard-hsm-pool")
    assert diffs["spec.hsmDeviceRefs"] is legacymanifests.Action.DROPPED


def test_non_hsm_documents_pass_through_as_written() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    doc = next(d for d in conversion.documents if d.file == "apps/secrets.yaml" and d.index == 2)
    assert doc.text is not None
    assert "# untouched, comments and all" in doc.text
    assert "  name: app-settings   # untouched, comments and all\n" in legacymanifests.render_yaml(conversion)


def test_every_document_of_a_multi_document_file_is_read(tmp_path: pathlib.Path) -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    assert [d.index for d in conversion.documents if d.file == "apps/secrets.yaml"] == [0, 1, 2]
    rendered = list(yaml.safe_load_all(legacymanifests.render_yaml(conversion)))
    assert len(rendered) == len(conversion.documents)


def test_a_paused_secret_is_pointed_out(tmp_path: pathlib.Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "apiVersion: hsm.j5t.io/v1alpha1\nkind: HSMSecret\nmetadata: {name: a, namespace: b}\n"
        "spec: {autoSync: false}\n"
    )
    conversion = legacymanifests.convert_dir(tmp_path)
    assert _diffs(conversion, "HSMSecret b/a") == {"spec.autoSync": legacymanifests.Action.CHECK}
    assert not conversion.documents[0].changed


def test_decisions_are_reported_and_left_as_written() -> None:
    conversion = legacymanifests.convert_dir(DATA / "decisions")
    assert conversion.needs_decision
    pico = _diffs(conversion, "HSMDevice hsm-secrets-operator-system/pico-hsm")
    assert pico["spec.pkcs11.pinSecret.namespace"] is legacymanifests.Action.DECIDE
    generic = _diffs(conversion, "HSMDevice hsm-secrets-operator-system/generic-hsm")
    assert generic["spec.discovery.devicePath"] is legacymanifests.Action.DROPPED
    assert generic["spec.discovery"] is legacymanifests.Action.DECIDE
    assert generic["spec.pkcs11.pinSecret"] is legacymanifests.Action.DECIDE
    assert _diffs(conversion, "HSMSecret team-b/shared-token")["spec.device"] is legacymanifests.Action.DECIDE


def test_one_legacy_path_read_from_two_namespaces_is_left_out_of_the_import_mapping() -> None:
    conversion = legacymanifests.convert_dir(DATA / "decisions")
    assert "shared-token" not in conversion.import_mapping
    for name in ("HSMSecret team-a/shared-token", "HSMSecret team-b/shared-token"):
        assert _diffs(conversion, name)["spec.hsmPath"] is legacymanifests.Action.DECIDE


def test_the_import_mapping_sends_each_legacy_path_to_its_readers_namespace() -> None:
    assert legacymanifests.convert_dir(DATA / "old-layout").import_mapping == {
        "secrets/default/database-credentials": "default"
    }


def test_the_json_report_lists_objects_differences_and_mapping() -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    report = json.loads(legacymanifests.render_report(conversion, "json"))
    assert report["summary"] == {"files": 5, "objects": 6, "unchanged": 1, "converted": 5, "needsDecision": 0}
    assert {"file", "object", "field", "action", "detail", "reason"} == set(report["differences"][0])
    assert report["importMapping"]["payments"] == "billing"


def test_invalid_yaml_names_the_file_and_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\n---\nkind: [unclosed\nmetadata: {}\n")
    with pytest.raises(legacymanifests.ManifestError, match=r"broken\.yaml: invalid YAML at line \d+"):
        legacymanifests.convert_dir(tmp_path)


def test_invalid_json_names_the_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "export.json").write_text('{"kind": ')
    with pytest.raises(legacymanifests.ManifestError, match=r"export\.json: invalid JSON"):
        legacymanifests.convert_dir(tmp_path)


def test_output_is_written_beside_never_over_the_input(tmp_path: pathlib.Path) -> None:
    conversion = legacymanifests.convert_dir(DATA / "single")
    written = legacymanifests.write_dir(conversion, DATA / "single", tmp_path / "out")
    assert (tmp_path / "out" / "apps" / "secrets.yaml") in written
    assert json.loads((tmp_path / "out" / "export.json").read_text())["kind"] == "List"
    with pytest.raises(legacymanifests.ManifestError, match="outside the input"):
        legacymanifests.write_dir(conversion, DATA / "single", DATA / "single" / "out")


def test_kubectl_hsm_import_manifests_prints_applicable_yaml_and_the_report_without_the_cluster(
    capsys: pytest.CaptureFixture[str], validators: dict[str, jsonschema_rs.Draft4Validator]
) -> None:
    # No kubeconfig, token or API: converting manifests is offline.
    assert cli.main(["import", "--manifests", str(DATA / "single")]) == 0
    out, err = capsys.readouterr()
    objects = [o for o in yaml.safe_load_all(out) if isinstance(o, dict) and o.get("kind") in validators]
    assert objects
    for obj in objects:
        assert not list(validators[obj["kind"]].iter_errors(obj))
    assert "converted" in err
    assert "unchanged" in err


def test_kubectl_hsm_import_manifests_exits_1_while_a_decision_is_needed_and_writes_outside_the_input(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "converted"
    assert (
        cli.main(["import", "--manifests", str(DATA / "decisions"), "--output", str(out_dir), "--json"]) == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["needsDecision"] > 0
    assert (out_dir / "manifests.yaml").is_file()
    assert (
        cli.main(["import", "--manifests", str(DATA / "single"), "--output", str(DATA / "single" / "x")]) == 1
    )
    assert "outside the input" in capsys.readouterr().err
    assert not (DATA / "single" / "x").exists()


def test_kubectl_hsm_import_manifests_refuses_the_secret_import_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["import", "--manifests", str(DATA / "single"), "--apply"]) == 1
    assert "--manifests converts files only" in capsys.readouterr().err
