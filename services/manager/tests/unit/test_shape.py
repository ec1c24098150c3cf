"""The Secret's data from the HSM secret's: key selection, templates, merge policy, and the shape digest."""

from __future__ import annotations

from typing import Any

import pytest

from hsm_common import models
from hsm_manager.decide import shape, templates

HSM = {"username": b"alice", "password": b"secret", "host": b"db", "unused": b"x"}


def spec(**fields: Any) -> models.HSMSecretSpec:
    return models.HSMSecretSpec.model_validate(fields)


def test_without_selection_or_template_every_key_is_copied() -> None:
    assert shape.secret_data(spec(), HSM) == HSM


def test_a_selection_keeps_only_the_listed_keys_under_their_new_names() -> None:
    selected = spec(
        data=[{"secretKey": "DB_USER", "key": "username"}, {"secretKey": "DB_PASS", "key": "password"}]
    )
    assert shape.secret_data(selected, HSM) == {"DB_USER": b"alice", "DB_PASS": b"secret"}


def test_an_empty_selection_keeps_no_key() -> None:
    assert shape.secret_data(spec(data=[]), HSM) == {}


def test_a_missing_key_names_the_key_and_never_a_value() -> None:
    with pytest.raises(shape.KeyMissing) as raised:
        shape.secret_data(
            spec(data=[{"secretKey": "a", "key": "nope"}, {"secretKey": "b", "key": "password"}]), HSM
        )
    assert str(raised.value) == "spec.data names nope, which the HSM secret does not hold"


def test_a_template_sees_the_selected_keys_under_their_new_names() -> None:
    templated = spec(
        data=[{"secretKey": "user", "key": "username"}, {"secretKey": "pw", "key": "password"}],
        target={"template": {"data": {"URL": "{{ values.user }}:{{ values.pw }}"}}},
    )
    assert shape.secret_data(templated, HSM) == {"URL": b"alice:secret"}


def test_merge_keeps_the_selected_keys_beside_the_rendered_ones() -> None:
    merged = spec(
        data=[{"secretKey": "user", "key": "username"}],
        target={
            "template": {"mergePolicy": "Merge", "data": {"user": "{{ values.user | upper }}", "x": "1"}}
        },
    )
    assert shape.secret_data(merged, HSM) == {"user": b"ALICE", "x": b"1"}


def test_a_template_error_is_raised_as_template_failed() -> None:
    with pytest.raises(templates.TemplateFailed):
        shape.secret_data(spec(target={"template": {"data": {"URL": "{{ values.nope }}"}}}), HSM)


def test_a_plain_spec_has_no_shape_digest() -> None:
    assert shape.digest(spec()) == ""
    assert shape.digest(spec(target={"type": "kubernetes.io/tls"})) == ""


def test_the_digest_changes_with_each_shaping_field() -> None:
    variants = [
        spec(data=[]),
        spec(data=[{"secretKey": "a", "key": "username"}]),
        spec(target={"labels": {"team": "a"}}),
        spec(target={"annotations": {"team": "a"}}),
        spec(target={"immutable": True}),
        spec(target={"template": {"data": {"a": "1"}}}),
        spec(target={"template": {"data": {"a": "2"}}}),
        spec(target={"template": {"data": {"a": "2"}, "mergePolicy": "Merge"}}),
    ]
    digests = [shape.digest(v) for v in variants]
    assert len(set(digests)) == len(variants)
    assert "" not in digests
