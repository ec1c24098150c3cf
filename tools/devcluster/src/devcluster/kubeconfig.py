"""Kubeconfig files: for the admin (client certificate) and for a ServiceAccount (bearer token)."""

import base64
import pathlib
from typing import Any

import yaml


def _b64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(
    server: str,
    ca_cert: pathlib.Path,
    user: dict[str, str],
    name: str = "devcluster",
    namespace: str | None = None,
) -> str:
    """A single-context kubeconfig; the CA is embedded so the file works on its own."""
    context: dict[str, str] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)}}
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def for_certificate(server: str, ca_cert: pathlib.Path, cert: pathlib.Path, key: pathlib.Path) -> str:
    """A kubeconfig that authenticates with a client certificate."""
    user = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
    return render(server, ca_cert, user)


def for_token(server: str, ca_cert: pathlib.Path, token: str, namespace: str | None = None) -> str:
    """A kubeconfig that authenticates with a bearer token."""
    return render(server, ca_cert, {"token": token}, namespace=namespace)


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write a kubeconfig readable only by its owner (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path
