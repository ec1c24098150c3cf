"""Rendering Secret keys with the sandboxed templates: what works, what is refused, and what errors say."""

from __future__ import annotations

import base64
import json

import pytest

from hsm_manager.decide import templates

DATA = {"user": b"alice", "password": b"p@ss:w/rd", "host": b"db.internal", "der": b"\xff\x00\xfe"}
PASSWORD = "p@ss:w/rd"


def render(source: str, data: dict[str, bytes] = DATA) -> str:
    return templates.render({"out": source}, data)["out"].decode()


def failure(source: str, data: dict[str, bytes] = DATA) -> str:
    with pytest.raises(templates.TemplateFailed) as raised:
        templates.render({"out": source}, data)
    message = str(raised.value)
    for value in data.values():
        assert value.decode(errors="replace") not in message
    return message


def test_a_database_url_is_built_from_three_keys() -> None:
    url = render("postgres://{{ values.user }}:{{ values.password | urlencode }}@{{ values.host }}/app")
    assert url == "postgres://alice:p%40ss%3Aw%2Frd@db.internal/app"


def test_keys_that_are_not_names_are_reached_by_subscript() -> None:
    assert render("{{ values['tls.crt'] }}", {"tls.crt": b"PEM"}) == "PEM"


def test_a_key_named_like_a_method_is_a_key() -> None:
    assert render("{{ values.items }}", {"items": b"3"}) == "3"


def test_a_value_that_is_not_utf8_is_usable_as_bytes_through_b64encode() -> None:
    assert base64.b64decode(render("{{ bytes.der | b64encode }}")) == DATA["der"]


def test_a_value_that_is_not_utf8_is_refused_as_text_and_the_message_says_what_to_use() -> None:
    assert (
        failure("{{ values.der }}")
        == "template out: line 1: values.der is not UTF-8 text; use bytes.der (with b64encode)"
    )


def test_bytes_are_not_written_as_their_python_repr() -> None:
    assert "use b64encode" in failure("{{ bytes.der }}")


def test_b64encode_and_b64decode_round_trip_text() -> None:
    assert render("{{ values.password | b64encode | b64decode }}") == PASSWORD


def test_b64decode_refuses_what_is_not_base64() -> None:
    assert failure("{{ values.user | b64decode }}").endswith("b64decode: the value is not valid base64")


def test_tojson_writes_plain_json() -> None:
    assert json.loads(render("{{ {'user': values.user, 'n': 1} | tojson }}")) == {"user": "alice", "n": 1}


def test_dockerconfigjson_writes_the_registry_credentials() -> None:
    config = json.loads(render("{{ 'ghcr.io' | dockerconfigjson(values.user, values.password) }}"))
    auth = config["auths"]["ghcr.io"]
    assert (auth["username"], auth["password"]) == ("alice", PASSWORD)
    assert base64.b64decode(auth["auth"]).decode() == f"alice:{PASSWORD}"


def test_an_undefined_key_is_an_error_naming_it() -> None:
    assert failure("{{ values.pasword }}") == "template out: line 1: undefined name 'pasword'"


def test_an_undefined_variable_is_an_error_naming_it() -> None:
    assert failure("a\n{{ nothing }}") == "template out: line 2: undefined name 'nothing'"


def test_a_value_used_as_a_name_is_not_quoted_in_the_error() -> None:
    assert failure("{{ values[values.password] }}") == "template out: line 1: an undefined name"


def test_a_syntax_error_names_the_key_and_line() -> None:
    assert failure("ok\n{{ values.user ").startswith("template out: line 2: unexpected end of template")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ values.user.__class__.__mro__[1].__subclasses__() }}",
        "{{ values._data }}",
        "{{ values.user.__init__.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_refused(source: str) -> None:
    assert "the sandbox refused" in failure(source)


@pytest.mark.parametrize("name", ["range", "lipsum", "cycler", "joiner", "namespace", "dict"])
def test_no_globals_are_offered(name: str) -> None:
    assert failure(f"{{{{ {name} }}}}") == f"template out: line 1: undefined name '{name}'"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{{ values.user * 10000000 }}",
        "{{ ([values.user] * 10000000) | join }}",
        "{{ ([values.user] * 100000) | join('x' * 100) }}",
        "{{ values.user | replace('a', 'xxxxxxxxxxxxxxxxxxxxxxxx' * 43691) }}",
    ],
)
def test_expressions_that_would_build_huge_values_are_refused(source: str) -> None:
    assert "larger than" in failure(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ values.user.center(1000000000) }}",
        "{{ values.user.ljust(1000000000) }}",
        "{{ '{:>999999999}'.format(1) }}",
    ],
)
def test_padding_methods_are_refused(source: str) -> None:
    assert failure(source)


def test_percent_formatting_is_refused() -> None:
    assert "% operator" in failure("{{ '%999999999s' % values.user }}")


def test_a_render_that_runs_too_long_is_stopped() -> None:
    loops = "{% for a in values.long %}{% for b in values.long %}{{ '' }}{% endfor %}{% endfor %}"
    assert "longer than" in failure(loops, {"long": b"x" * 20000})


def test_errors_from_python_do_not_show_their_message() -> None:
    message = failure("{{ values.password | int }}{{ (values.password ~ 'x') | int + 'y' }}")
    assert message.endswith("(its message is not shown: it could hold a value)")


def test_filters_outside_the_list_are_unknown() -> None:
    assert "No filter named 'center'" in failure("{{ values.user | center(10) }}")


def test_the_first_failing_key_is_named() -> None:
    with pytest.raises(templates.TemplateFailed, match="template b:"):
        templates.render({"a": "{{ values.user }}", "b": "{{ missing }}"}, DATA)


def test_optional_keys_can_be_tested_and_defaulted() -> None:
    source = "{{ values.port | default('5432') }} {{ 'port' in values }} {{ values.port is defined }}"
    assert render(source) == "5432 False False"


def test_iterating_over_values_gives_the_keys_in_order() -> None:
    assert render("{% for key in values %}{{ key }},{% endfor %}") == "der,host,password,user,"
