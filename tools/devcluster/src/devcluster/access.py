"""Test identities and readiness facts: ServiceAccount kubeconfigs and Established CRDs."""

import functools
import pathlib
from collections.abc import Iterable
from typing import Any

from . import kubeapi, kubeconfig, wait


def service_account_token(
    client: kubeapi.Client, namespace: str, name: str, expiration_seconds: int = 3600
) -> str:
    """Mint a token for ServiceAccount ``namespace/name`` with the TokenRequest API."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration_seconds},
    }
    answer = client.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
    token: str = answer["status"]["token"]
    return token


def service_account_kubeconfig(
    client: kubeapi.Client,
    server: str,
    ca_cert: pathlib.Path,
    namespace: str,
    name: str,
    path: pathlib.Path,
) -> pathlib.Path:
    """Write a kubeconfig that acts as the ServiceAccount (so a component runs with its own RBAC)."""
    token = service_account_token(client, namespace, name)
    return kubeconfig.write(path, kubeconfig.for_token(server, ca_cert, token, namespace))


def _established(crd: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in crd.get("status", {}).get("conditions", [])
    )


def _is_established(client: kubeapi.Client, path: str) -> bool:
    return _established(client.get(path))


def wait_crds_established(client: kubeapi.Client, names: Iterable[str], timeout: float = 30.0) -> None:
    """Return once every named CRD (``plural.group``) is Established."""
    for name in names:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        wait.until(functools.partial(_is_established, client, path), timeout, f"CRD {name} Established")
