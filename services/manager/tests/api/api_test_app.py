"""App factory for integration tests, loaded by gunicorn: real agents, auth from a static table.

The table stands in for the cluster's TokenReview/SubjectAccessReview at the Deps seam (the e2e tests
use the real ones); the PIN store writes the PIN files the test agents read, as a kubelet would; the
HSMPools are the objects the config lists, as the operator would have written them.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from hsm_manager.api import app, auth
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service


class TableAuth:
    """Tokens → users, users → allowed (verb, resource, namespace) triples ('*' matches any)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._tokens: dict[str, str] = config["tokens"]
        self._rules: dict[str, list[list[str]]] = config["rules"]

    def review_token(self, token: str) -> auth.User | None:
        name = self._tokens.get(token)
        return auth.User(name, uid=f"uid-{name}", groups=("testers",)) if name else None

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        for verb, resource, namespace in self._rules.get(user.username, []):
            if (
                verb in ("*", access.verb)
                and resource == access.resource
                and namespace in ("*", access.namespace)
            ):
                return True
        return False


class PinFiles:
    """Writes a new PIN into every agent's PIN file of the device."""

    def __init__(self, files: dict[str, list[str]]) -> None:
        self._files = files

    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        for name in self._files.get(device, []):
            pathlib.Path(name).write_text(new_pin)


class StaticPools:
    """HSMPool objects as the Kubernetes API lists them (kind is always HSMPool here)."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self._objects = objects

    def list_custom(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [obj for obj in self._objects if namespace in (None, obj["metadata"]["namespace"])]


def build() -> Any:
    """The app wired from the JSON file named by HSM_API_TEST_CONFIG."""
    config = json.loads(pathlib.Path(os.environ["HSM_API_TEST_CONFIG"]).read_text())
    table = TableAuth(config)
    namespace = config["deviceNamespace"]
    directory = endpoints.StaticDirectory(
        [
            endpoints.AgentEndpoint(device, namespace, m["name"], m["name"], "", m["address"])
            for device, members in config["devices"].items()
            for m in members
        ],
        copies_bytes=config["copiesMiB"] * 2**20,
    )
    deps = app.Deps(
        guard=auth.Guard(table, table),
        mirror=service.Mirror(directory, namespace),
        pins=PinFiles(config.get("pinFiles", {})),
        device_namespace=namespace,
        pools=StaticPools(config.get("pools", [])),
    )
    return app.create_app(deps)
