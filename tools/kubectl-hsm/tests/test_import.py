"""kubectl hsm import: the inputs it takes from the cluster's HSMSecrets, the body it sends, its report and
its exit code."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from kubectl_hsm import cli, legacyimport


def _hsmsecret(namespace: str, name: str, hsm_path: str | None = None) -> dict[str, Any]:
    spec = {"hsmPath": hsm_path} if hsm_path else {}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


REFS = [
    legacyimport.reference(_hsmsecret("team-a", "db"), ["password", "username"]),
    legacyimport.reference(_hsmsecret("team-a", "api", "shared/api-token"), []),
    legacyimport.reference(_hsmsecret("team-b", "db2", "db"), ["password"]),
    legacyimport.reference(_hsmsecret("team-c", "cache"), ["url"]),
]


def _report(outcome: str = "would-import", undecided: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    path = {
        "legacyPath": "cache",
        "target": "team-c/cache",
        "status": "ready",
        "outcome": outcome,
        "detail": "",
        "keys": ["url"],
        "sizes": {"url": 12},
        "missingKeys": [],
        "reasons": [],
        "metadataDropped": [],
        "legacyObjects": 1,
        "legacyRemoved": 0,
    }
    device = {
        "hsmDevice": "pair",
        "device": "hsm-a",
        "legacyObjects": 1,
        "paths": [path],
        "undecided": undecided or [],
        "knownMissing": [],
        "error": None,
    }
    return {"applied": outcome != "would-import", "devices": [device], "summary": {outcome: 1}}


class _Api:
    """Records the import request and answers with a prepared report."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, route: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.sent.append((method, route, kwargs.get("json")))
        return 200, {"success": True, "data": self.report}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legacyimport, "read_cluster", lambda kubeconfig, context: REFS)


def test_an_hsmsecret_s_legacy_path_is_its_hsm_path_below_its_namespace() -> None:
    assert [(ref.namespace, ref.legacy_path) for ref in REFS] == [
        ("team-a", "db"),
        ("team-a", "shared/api-token"),
        ("team-b", "db"),
        ("team-c", "cache"),
    ]


def test_cluster_inputs_map_each_path_to_its_namespace_and_report_paths_two_namespaces_name() -> None:
    inputs = legacyimport.cluster_inputs(REFS)
    assert inputs.mapping == {"cache": "team-c", "shared/api-token": "team-a"}
    assert inputs.clashes == {"db": ["team-a", "team-b"]}
    assert inputs.known_paths == {
        "cache": ["url"],
        "db": ["password", "username"],
        "shared/api-token": [],
    }


def test_the_dry_run_sends_the_cluster_s_mapping_and_keys_and_prints_the_plan(
    cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    api = _Api(_report())
    code = cli.cmd_import(cli.build_parser().parse_args(["import"]), api)  # type: ignore[arg-type]
    ((method, route, sent),) = api.sent
    assert (method, route) == ("POST", "/hsm/import-legacy")
    assert sent["apply"] is False
    assert sent["mapping"] == {"cache": "team-c", "shared/api-token": "team-a"}
    assert "defaultNamespace" not in sent
    out = capsys.readouterr().out
    assert "dry run: nothing is written" in out
    assert "would-import     cache -> team-c/cache (url)" in out
    assert "legacy path db is named by HSMSecrets in team-a, team-b" in out
    assert code == 1  # the clash is not decided


def test_a_namespace_sends_every_path_there_and_a_settled_import_exits_zero(
    cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    api = _Api(_report("imported"))
    args = cli.build_parser().parse_args(["import", "--namespace", "prod", "--apply", "--remove-legacy"])
    assert cli.cmd_import(args, api) == 0  # type: ignore[arg-type]
    sent = api.sent[0][2]
    assert (sent["defaultNamespace"], sent["mapping"], sent["removeLegacy"]) == ("prod", {}, True)
    assert sent["knownPaths"]["db"] == ["password", "username"]


def test_a_mapping_file_replaces_the_cluster_s_namespaces(
    cluster: None, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"db": "team-a"}))
    api = _Api(_report())
    assert cli.cmd_import(cli.build_parser().parse_args(["import", "--mapping", str(mapping)]), api) == 0  # type: ignore[arg-type]
    assert api.sent[0][2]["mapping"] == {"db": "team-a"}


def test_undecided_labels_are_reported_and_fail_the_run(
    cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    undecided = [{"label": "a/b/c", "readings": [], "reason": "neither path is known"}]
    api = _Api(_report("imported", undecided))
    args = cli.build_parser().parse_args(["import", "--namespace", "prod", "--apply"])
    assert cli.cmd_import(args, api) == 1  # type: ignore[arg-type]
    assert "undecided label a/b/c: neither path is known" in capsys.readouterr().out


def test_json_prints_the_report_with_the_clashes(cluster: None, capsys: pytest.CaptureFixture[str]) -> None:
    cli.cmd_import(cli.build_parser().parse_args(["import", "--json"]), _Api(_report()))  # type: ignore[arg-type]
    printed = json.loads(capsys.readouterr().out)
    assert printed["clashes"] == {"db": ["team-a", "team-b"]}
    assert printed["devices"][0]["paths"][0]["outcome"] == "would-import"


def test_remove_legacy_without_apply_is_refused_before_any_call(
    cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    api = _Api(_report())
    args = cli.build_parser().parse_args(["import", "--namespace", "prod", "--remove-legacy"])
    with pytest.raises(cli.secretdata.DataError, match="--remove-legacy needs --apply"):
        cli.cmd_import(args, api)  # type: ignore[arg-type]
    assert api.sent == []
