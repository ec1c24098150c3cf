"""hsm-agent import-legacy on real SoftHSM2 tokens in the Go operator's layout (legacy_token.py): the plan,
the import, reruns, a run killed part-way, conflicts and the removal of legacy objects."""

from __future__ import annotations

import base64
import collections
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from hsm_agent.store import layout
from hsm_agent.tools.legacy import cli, golayout, run

from . import legacy_token

PIN = "1234"
"""The PIN conftest's tokens are initialised with."""


@pytest.fixture
def legacy(softhsm) -> legacy_token.LegacyFixture:
    return legacy_token.populate(softhsm.label, PIN)


@pytest.fixture
def known_file(tmp_path: pathlib.Path, legacy: legacy_token.LegacyFixture) -> str:
    path = tmp_path / "known-paths"
    path.write_text("# from the cluster's HSMSecrets\n\n" + legacy.known_paths_text)
    return str(path)


@pytest.fixture
def importer(softhsm, capsys):  # type: ignore[no-untyped-def]
    """Run import-legacy in this process with --json: (exit code, its JSON report)."""

    def run_import(*flags: str) -> tuple[int, dict]:
        code = cli.main(
            ["--token-label", softhsm.label, "--pin-file", str(softhsm.pin_file), "--json", *flags]
        )
        return code, json.loads(capsys.readouterr().out)

    return run_import


def _by_path(doc: dict) -> dict[str, dict]:
    return {entry["legacy_path"]: entry for entry in doc["paths"]}


def _with(doc: dict, field: str, value: str) -> set[str]:
    return {path for path, entry in _by_path(doc).items() if entry[field] == value}


def _objects(softhsm) -> dict[str, list[str]]:
    """Labels of every data object on the token by application, listed by another process."""
    found: dict[str, list[str]] = collections.defaultdict(list)
    for obj in softhsm.tool("list"):
        found[obj["app"]].append(obj["label"])
    return found


def _labels_of(legacy: legacy_token.LegacyFixture, paths: set[str]) -> set[str]:
    labels = set()
    for path in paths:
        labels |= {path if key == "data" else f"{path}/{key}" for key in legacy.secrets.get(path, {})}
        if path in legacy.metadata:
            labels.add(f"{path}/_metadata")
    return labels


def test_a_dry_run_plans_every_legacy_path_and_changes_nothing(softhsm, legacy, importer, known_file) -> None:
    before = _objects(softhsm)
    code, doc = importer("--namespace", "prod", "--known-paths", known_file)
    assert code == 9  # ambiguous, half-written, empty and invalid paths remain
    assert doc["mode"] == "dry-run"
    assert doc["legacy_objects"] == legacy.objects == 248
    assert _with(doc, "status", "ready") == legacy.ready
    assert _with(doc, "outcome", "would-import") == legacy.ready
    assert _with(doc, "status", "incomplete") == set(legacy.incomplete)
    assert _with(doc, "status", "ambiguous") == legacy.ambiguous_paths
    assert _with(doc, "status", "empty") == legacy.empty
    assert _with(doc, "status", "invalid") == legacy.invalid
    assert {item["label"] for item in doc["undecided"]} == legacy.ambiguous_labels
    paths = _by_path(doc)
    assert paths["team-0/app-000"]["target"] == "prod/team-0/app-000"
    assert paths["half-0/svc"]["missing_keys"] == ["password"]
    assert paths["team-0/app-003"]["keys"] == ["ca.crt", "data"]
    assert _objects(softhsm) == before


def test_the_report_never_holds_a_value(softhsm, legacy, importer, known_file) -> None:
    _, doc = importer("--namespace", "prod", "--known-paths", known_file)
    text = json.dumps(doc)
    values = [value for data in legacy.secrets.values() for value in data.values() if len(value) >= 8]
    forms = {form for value in values for form in (value.hex(), base64.b64encode(value).decode())}
    assert not {form for form in forms if form in text}
    assert "user-10" not in text  # a printable value


def test_an_ambiguous_label_is_reported_with_both_readings_and_holds_back_both_paths(
    legacy, importer, known_file
) -> None:
    _, doc = importer("--namespace", "prod", "--known-paths", known_file)
    undecided = {item["label"]: item for item in doc["undecided"]}["amb-0/x/c"]
    assert sorted(map(tuple, undecided["readings"])) == [("amb-0/x", "c"), ("amb-0/x/c", "data")]
    assert "both paths are known" in undecided["reason"]
    paths = _by_path(doc)
    assert paths["amb-0/x"]["outcome"] == paths["amb-0/x/c"]["outcome"] == "skipped"


def test_without_the_known_paths_list_labels_nothing_on_the_token_decides_are_reported(
    legacy, importer
) -> None:
    _, doc = importer("--namespace", "prod")
    undecided = {item["label"] for item in doc["undecided"]}
    needs_list = {path for path in legacy.ready if path not in legacy.decided_without_list}
    assert undecided == legacy.ambiguous_labels | _labels_of(legacy, needs_list) | {"half-2/svc/username"}
    would = _with(doc, "outcome", "would-import")
    # Half-written paths that kept their metadata look whole without the list (see docs/migrating.md).
    assert would == legacy.decided_without_list | {"half-0/svc", "half-1/svc"}


def test_apply_imports_every_ready_path_byte_for_byte_with_its_metadata(
    softhsm, legacy, importer, known_file, logged_in
) -> None:
    code, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply")
    assert code == 9
    assert _with(doc, "outcome", "imported") == legacy.ready
    with logged_in(softhsm) as store:
        for path in legacy.ready:
            secret = store.read(f"prod/{path}")
            assert secret.data == legacy.secrets[path]
            assert secret.head.writer == run.WRITER
            meta = legacy.metadata.get(path)
            if meta is not None:
                assert secret.head.metadata.description == meta["description"]
                assert dict(secret.head.metadata.labels) == meta["labels"]
                assert (secret.head.metadata.created_at, secret.head.metadata.source) == (
                    meta["createdAt"],
                    meta["source"],
                )
            assert secret.head.metadata.data_type == legacy.data_types.get(path, "")
        skipped = set(legacy.incomplete) | legacy.ambiguous_paths | legacy.empty | legacy.invalid
        assert all(store.index.get(f"prod/{path}") is None for path in skipped)
    dropped = _by_path(doc)["team-0/app-000"]["metadata_dropped"]
    assert "metadata field owner (ours has no such field)" in dropped
    assert len(_objects(softhsm)[golayout.APPLICATION]) == legacy.objects  # kept without --remove-legacy


def test_a_rerun_skips_every_path_already_imported(softhsm, legacy, importer, known_file) -> None:
    importer("--namespace", "prod", "--known-paths", known_file, "--apply")
    records = sorted(_objects(softhsm)[layout.APPLICATION_RECORD])
    code, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply")
    assert code == 9
    assert _with(doc, "outcome", "already-imported") == legacy.ready
    assert "imported" not in {entry["outcome"] for entry in doc["paths"]}
    assert sorted(_objects(softhsm)[layout.APPLICATION_RECORD]) == records


def test_a_target_holding_other_data_is_a_conflict_and_is_not_overwritten(
    softhsm, legacy, importer, known_file, logged_in
) -> None:
    with logged_in(softhsm) as store:
        store.write("prod/team-1/app-001", {"username": b"someone-else"}, None)
    code, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply", "--remove-legacy")
    assert code == 9
    entry = _by_path(doc)["team-1/app-001"]
    assert entry["outcome"] == "conflict"
    assert entry["legacy_removed"] == 0
    assert "other values for username" in entry["detail"]
    assert "without password" in entry["detail"]
    with logged_in(softhsm) as store:
        assert store.read("prod/team-1/app-001").data == {"username": b"someone-else"}
    assert "team-1/app-001/password" in _objects(softhsm)[golayout.APPLICATION]


def test_remove_legacy_destroys_only_the_legacy_objects_of_verified_paths(
    softhsm, legacy, importer, known_file, logged_in
) -> None:
    softhsm.tool("create", "other-tool", "team-0/app-000/username", "00")
    with logged_in(softhsm) as store:
        store.write("keep/mine", {"k": b"v"}, None)
    before = set(_objects(softhsm)[golayout.APPLICATION])
    code, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply", "--remove-legacy")
    assert code == 9
    after = _objects(softhsm)
    assert set(after[golayout.APPLICATION]) == before - _labels_of(legacy, legacy.ready)
    assert after["other-tool"] == ["team-0/app-000/username"]
    assert sum(entry["legacy_removed"] for entry in doc["paths"]) == len(_labels_of(legacy, legacy.ready))
    with logged_in(softhsm) as store:
        assert store.read("keep/mine").data == {"k": b"v"}
        assert all(store.read(f"prod/{path}").data == legacy.secrets[path] for path in legacy.ready)


def test_remove_legacy_without_apply_is_refused(importer) -> None:
    code, doc = importer("--namespace", "prod", "--remove-legacy")
    assert (code, doc["exit_name"]) == (2, "USAGE")


def test_half_written_paths_are_imported_with_the_keys_they_kept_only_when_asked(
    softhsm, legacy, importer, known_file, logged_in
) -> None:
    _, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply")
    assert {_by_path(doc)[path]["outcome"] for path in legacy.incomplete} == {"skipped"}
    _, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply", "--import-incomplete")
    assert {_by_path(doc)[path]["outcome"] for path in legacy.incomplete} == {"imported"}
    with logged_in(softhsm) as store:
        assert store.read("prod/half-0/svc").data == {"username": b"half-0"}


def test_a_mapping_file_sends_each_prefix_to_its_namespace(tmp_path, legacy, importer, known_file) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"team-0": "zero", "team-0/app-003": "special", "plain": "misc"}))
    _, doc = importer("--mapping", str(mapping), "--known-paths", known_file)
    paths = _by_path(doc)
    assert paths["team-0/app-000"]["target"] == "zero/team-0/app-000"
    assert paths["team-0/app-003"]["target"] == "special/team-0/app-003"
    assert paths["plain"]["target"] == "misc/plain"
    assert (paths["team-1/app-001"]["target"], paths["team-1/app-001"]["status"]) == (None, "unmapped")


def _killed_run(softhsm, known_file: str, after_imports: int) -> None:
    """Start a real import and SIGKILL it right after it reported after_imports imported paths."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "hsm_agent", "import-legacy", "--token-label", softhsm.label),
            *("--namespace", "prod", "--known-paths", known_file, "--apply", "--remove-legacy"),
        ],
        env={**softhsm.env(), "HSM_AGENT_PIN": PIN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    imported = 0
    for line in process.stdout:
        imported += line.startswith("imported")
        if imported == after_imports:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the import ended before it was killed"


def test_an_import_killed_part_way_is_finished_by_the_next_run(
    softhsm, legacy, importer, known_file, logged_in
) -> None:
    for after_imports in (1, 7, 30):
        _killed_run(softhsm, known_file, after_imports)
    code, doc = importer("--namespace", "prod", "--known-paths", known_file, "--apply", "--remove-legacy")
    assert code == 9
    # Paths the kills left behind are finished, whichever step was cut short (the write, the read-back, a
    # removal); the others are gone from the token's legacy objects and so from the plan.
    finished = {path: entry["outcome"] for path, entry in _by_path(doc).items() if path in legacy.ready}
    assert set(finished.values()) <= {"imported", "already-imported"}
    assert len(finished) <= len(legacy.ready) - (1 + 7 + 30)  # each reported path was done, removal included
    objects = _objects(softhsm)
    stems = collections.Counter(label.rsplit("@", 1)[0] for label in objects[layout.APPLICATION_RECORD])
    assert stems == collections.Counter(f"prod/{path}" for path in legacy.ready)
    assert set(objects[golayout.APPLICATION]) == _labels_of(legacy, set(legacy.secrets) - legacy.ready) | {
        f"{path}/_metadata" for path in legacy.metadata if path not in legacy.ready
    }
    with logged_in(softhsm) as store:
        assert all(store.read(f"prod/{path}").data == legacy.secrets[path] for path in legacy.ready)
