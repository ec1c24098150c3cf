"""The importer's pure parts: reading Go labels, OIDs and metadata, the mapping and known-paths files, and
the plan's decisions (no token: the objects are built here)."""

from __future__ import annotations

import json

import pytest

from hsm_agent.store import token
from hsm_agent.tools.legacy import golayout, inputs, plan

from . import legacy_token

EVERYWHERE = inputs.Namespaces({}, "prod")


def obj(label: str, value: bytes = b"v", object_id: bytes = b"") -> token.ForeignObject:
    return token.ForeignObject(label=label, value=value, object_id=object_id, handle=None)


def meta(path: str, **fields: object) -> token.ForeignObject:
    return obj(f"{path}/_metadata", json.dumps({"description": path, **fields}).encode())


def make(*objects: token.ForeignObject, known: str | None = None) -> plan.Plan:
    return plan.make(list(objects), inputs.known_paths(known), EVERYWHERE)


def by_path(the_plan: plan.Plan) -> dict[str, plan.PathPlan]:
    return {p.legacy_path: p for p in the_plan.paths}


def test_a_label_reads_as_the_whole_path_with_key_data_or_as_path_and_key() -> None:
    assert golayout.readings("db") == (("db", "data"),)
    assert golayout.readings("a/b/c") == (("a/b/c", "data"), ("a/b", "c"))
    # The key "data" is stored as "<path>", never as "<path>/data".
    assert golayout.readings("a/data") == (("a/data", "data"),)


def test_object_ids_name_the_go_data_types() -> None:
    assert golayout.data_type(legacy_token.oid(3)) == "pem"
    assert golayout.data_type(legacy_token.oid(8)) == "docker-config"
    assert golayout.data_type(b"") is None
    with pytest.raises(ValueError, match="names no data type"):
        golayout.data_type(legacy_token.oid(9))
    with pytest.raises(ValueError, match="not a DER"):
        golayout.data_type(b"\x04\x02ab")


def test_go_metadata_maps_onto_ours_and_says_what_it_drops() -> None:
    raw = json.dumps(
        {"description": "d", "labels": {"a": "b", "n": 1}, "dataType": "pem", "owner": "x", "format": 3}
    ).encode()
    mapped, dropped = golayout.parse_metadata(raw)
    assert (mapped.description, dict(mapped.labels), mapped.data_type) == ("d", {"a": "b"}, "pem")
    assert set(dropped) == {
        "metadata label n (not a string)",
        "metadata field owner (ours has no such field)",
        "metadata field format (not a string)",
    }


def test_a_metadata_object_proves_its_path() -> None:
    the_plan = make(obj("a/b/user"), obj("a/b/pass"), meta("a/b"))
    assert by_path(the_plan)["a/b"].status is plan.Status.READY
    assert by_path(the_plan)["a/b"].data.keys() == {"user", "pass"}
    assert the_plan.undecided == ()


def test_a_label_no_evidence_decides_is_undecided_not_guessed() -> None:
    the_plan = make(obj("a/b/user"))
    assert [item.label for item in the_plan.undecided] == ["a/b/user"]
    assert "neither path is known" in the_plan.undecided[0].reason
    assert the_plan.paths == ()


def test_a_label_both_of_whose_paths_are_proven_holds_back_both() -> None:
    the_plan = make(obj("a/b/c"), obj("a/b/d"), meta("a/b"), meta("a/b/c"))
    assert "both paths are known" in the_plan.undecided[0].reason
    assert by_path(the_plan)["a/b"].status is plan.Status.AMBIGUOUS
    assert by_path(the_plan)["a/b/c"].status is plan.Status.AMBIGUOUS


def test_the_keys_of_the_known_paths_list_decide_between_readings() -> None:
    # "a/b" is known with keys c and d: "a/b/x" cannot be its key, so it is path "a/b/x" (known too).
    the_plan = make(obj("a/b/c"), obj("a/b/x"), known="a/b c,d\na/b/x\n")
    paths = by_path(the_plan)
    assert paths["a/b"].missing_keys == ("d",)
    assert paths["a/b"].status is plan.Status.INCOMPLETE
    assert paths["a/b/x"].data.keys() == {"data"}


def test_a_key_the_known_paths_list_does_not_name_holds_the_path_back() -> None:
    the_plan = make(obj("db"), obj("db/extra"), known="db user\n")
    assert by_path(the_plan)["db"].status is plan.Status.AMBIGUOUS


def test_duplicate_labels_with_different_values_are_invalid_and_equal_ones_are_one_key() -> None:
    the_plan = make(obj("a", b"1"), obj("a", b"1"), obj("b", b"1"), obj("b", b"2"))
    assert by_path(the_plan)["a"].status is plan.Status.READY
    assert len(by_path(the_plan)["a"].objects) == 2
    assert by_path(the_plan)["b"].status is plan.Status.INVALID


def test_a_name_our_rules_refuse_is_invalid() -> None:
    assert by_path(make(obj("Upper")))["Upper"].status is plan.Status.INVALID
    assert by_path(make(obj("ok/bad key"), meta("ok")))["ok"].status is plan.Status.INVALID


def test_per_key_data_types_that_differ_are_dropped_and_equal_ones_kept() -> None:
    same = make(
        obj("p/a", object_id=legacy_token.oid(2)), obj("p/b", object_id=legacy_token.oid(2)), meta("p")
    )
    assert by_path(same)["p"].metadata.data_type == "json"
    mixed = make(
        obj("p/a", object_id=legacy_token.oid(2)), obj("p/b", object_id=legacy_token.oid(3)), meta("p")
    )
    assert by_path(mixed)["p"].metadata.data_type == ""
    assert "data types per key (a: json, b: pem): ours has one per secret" in by_path(mixed)["p"].dropped


def test_legacy_objects_are_removed_keys_first_and_the_evidence_last() -> None:
    the_plan = make(meta("p"), obj("p"), obj("p/z"), obj("p/a"))
    assert [o.label for o in by_path(the_plan)["p"].objects] == ["p/a", "p/z", "p", "p/_metadata"]


def test_a_path_with_only_metadata_is_empty() -> None:
    assert by_path(make(meta("p")))["p"].status is plan.Status.EMPTY


def test_known_paths_with_no_object_are_listed() -> None:
    assert make(obj("a"), known="a\nb/c k\n").known_missing == ("b/c",)


def test_the_longest_matching_prefix_names_the_namespace() -> None:
    spaces = inputs.namespaces(json.dumps({"team": "t", "team/db": "d"}), "fallback")
    assert spaces.namespace_for("team/db/x") == "d"
    assert spaces.namespace_for("team/app") == "t"
    assert spaces.namespace_for("teams/app") == "fallback"
    assert inputs.namespaces(json.dumps({"team": "t"}), None).namespace_for("other") is None


@pytest.mark.parametrize(
    ("mapping", "match"),
    [("[1]", "one JSON object"), ('{"a": "x/y"}', "one path segment"), ("{", "not JSON")],
)
def test_a_mapping_file_that_cannot_be_used_says_why(mapping: str, match: str) -> None:
    with pytest.raises(inputs.InputError, match=match):
        inputs.namespaces(mapping, None)


def test_the_known_paths_file_skips_comments_and_reads_keys() -> None:
    known = inputs.known_paths("# comment\n\nteam/db user,pass\nplain\n")
    assert known.expected_keys("team/db") == {"user", "pass"}
    assert "plain" in known.keys
    assert known.expected_keys("plain") is None
