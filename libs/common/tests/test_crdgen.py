import pathlib
from typing import Any

import yaml

from hsm_common import crdgen, models

CRD_DIR = pathlib.Path(__file__).resolve().parents[3] / "deploy" / "kustomize" / "base" / "crds"


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def test_committed_crds_match_the_models() -> None:
    for name, text in crdgen.render().items():
        path = CRD_DIR / name
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == text, f"{path} is stale: run `make crds`"


def test_schemas_are_structural() -> None:
    for manifest in crdgen.crds().values():
        schema = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for node in walk(schema["properties"]["spec"]) + walk(schema["properties"].get("status", {})):
            assert "$ref" not in node
            assert "anyOf" not in node
            assert "default" not in node
            assert not isinstance(node.get("additionalProperties"), bool)


def test_every_schema_node_has_a_type() -> None:
    for manifest in crdgen.crds().values():
        schema = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for field in ("spec", "status"):
            if field not in schema["properties"]:
                continue
            stack = [schema["properties"][field]]
            while stack:
                node = stack.pop()
                assert "type" in node, node
                stack.extend(node.get("properties", {}).values())
                if isinstance(node.get("items"), dict):
                    stack.append(node["items"])


def test_status_subresource_short_names_and_columns() -> None:
    secrets = yaml.safe_load((CRD_DIR / "hsmsecrets.yaml").read_text())
    version = secrets["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert secrets["spec"]["names"]["shortNames"] == ["hsmsec"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Secret",
        "Status",
        "Last Sync",
        "Age",
        "Reason",
    ]
    assert [c.get("priority", 0) for c in version["additionalPrinterColumns"]] == [0, 0, 0, 0, 1]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"syncStatus", "hsmVersion", "conditions", "secretRef", "observedGeneration"} <= set(status)
    devices = yaml.safe_load((CRD_DIR / "hsmdevices.yaml").read_text())
    assert "subresources" not in devices["spec"]["versions"][0]


def test_path_pattern_reaches_the_schema() -> None:
    secrets = crdgen.crds()["hsmsecrets.yaml"]
    spec = secrets["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["hsmPath"]["pattern"].startswith("^[a-z0-9]")


def test_a_docstring_wrapped_over_lines_is_one_line_of_description() -> None:
    schema = crdgen.schema_of(models.PKCS11Spec)
    assert "\n" not in schema["properties"]["maxObjects"]["description"]
