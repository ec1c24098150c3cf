"""The web console's files: served at / and /console/ in front of the API, with their security headers,
without a token and without adding a route to the API."""

from __future__ import annotations

import flask
import pytest

from hsm_manager.api import app, auth, console
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


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    mirror = service.Mirror(endpoints.StaticDirectory([]), "ns")
    return app.create_app(
        app.Deps(auth.Guard(_Nobody(), _Nobody()), mirror, _NoPins(), "ns", api_test_app.StaticPools([]))
    ).test_client()


def test_the_page_is_served_at_the_root_without_a_token(client: flask.testing.FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b'<script type="module" src="/console/js/main.js">' in response.data


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [("/console/console.css", "text/css"), ("/console/js/main.js", "text/javascript")],
)
def test_assets_are_served_with_their_type(
    client: flask.testing.FlaskClient, path: str, mimetype: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype


@pytest.mark.parametrize("path", ["/", "/console/js/api.js"])
def test_console_responses_carry_the_security_headers(client: flask.testing.FlaskClient, path: str) -> None:
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in policy
    assert "unsafe" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_the_page_has_no_inline_script_or_style() -> None:
    page = console.files()["/"][1].decode()
    assert "<style" not in page
    assert " style=" not in page
    assert "<script>" not in page
    assert "onclick=" not in page


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/"), ("GET", "/console/missing.js"), ("GET", "/index.html")]
)
def test_anything_else_is_the_apis_to_answer(
    client: flask.testing.FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["Cache-Control"] == "no-store"
