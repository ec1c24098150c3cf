"""The OpenAPI document matches the app's own URL map (no route added without documentation)."""

from __future__ import annotations

import re

from hsm_manager.api import app, auth, config, openapi, server
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service

from . import api_test_app


class _Nobody:
    def review_token(self, token: str) -> auth.User | None:
        return None

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        return False


class _NoPins:
    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        raise AssertionError("not called")


def test_openapi_documents_every_rule_of_the_app() -> None:
    mirror = service.Mirror(endpoints.StaticDirectory([]), "ns")
    deps = app.Deps(auth.Guard(_Nobody(), _Nobody()), mirror, _NoPins(), "ns", api_test_app.StaticPools([]))
    flask_app = app.create_app(deps)
    rules = {
        (re.sub(r"<path:(\w+)>", r"{\1}", rule.rule), method)
        for rule in flask_app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, m.upper()) for path, item in openapi.document()["paths"].items() for m in item}
    assert rules == documented


def test_gunicorn_makes_no_control_socket() -> None:
    """It would be made under $HOME, which is read-only in the pod (and the machine's own in tests)."""
    served = server._Application(config.ApiConfig(insecure_plain_http=True), lambda: None)
    assert served.cfg.control_socket_disable is True
