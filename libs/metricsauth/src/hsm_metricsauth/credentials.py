"""Where a process sends its reviews and with which bearer token: its ServiceAccount, or a kubeconfig.

One rule, the one the manager's Kubernetes client follows: an explicit kubeconfig file when given, else the
pod's ServiceAccount when running in a cluster, else the default kubeconfig (``$KUBECONFIG`` or
``~/.kube/config``). A kubeconfig user must hold a bearer token (``token`` or ``tokenFile``): the processes
run outside a pod (tests, benchmarks) act as ServiceAccounts too.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pathlib
import ssl
import urllib.parse
from typing import Any

import yaml

#: Where the kubelet mounts the pod's ServiceAccount token and the cluster's CA.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class Missing(Exception):
    """No usable way to the API server (the message says what was looked for, never a token)."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """An API server and how to authenticate to it."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    """Verifies the API server; None for a plain-HTTP server (a test's stand-in)."""
    token: str = ""
    """The bearer token itself, as a kubeconfig may hold it."""
    token_file: str = ""
    """A file holding the token, read at every review: the kubelet replaces a projected token long
    before it expires, so a token read once would stop working after an hour or so."""

    def bearer(self) -> str:
        """The token to send now; Missing when its file cannot be read."""
        if not self.token_file:
            return self.token
        try:
            return pathlib.Path(self.token_file).read_text().strip()
        except OSError as error:
            raise Missing(f"cannot read the token file {self.token_file}: {error.strerror}") from None


def in_cluster(directory: str = SERVICE_ACCOUNT_DIR) -> Credentials | None:
    """The pod's ServiceAccount, None outside a pod (no service address or no token mounted)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = os.path.join(directory, "token")
    if not host or not port or not os.path.isfile(token_file):
        return None
    context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))
    return Credentials(host.strip("[]"), int(port), context, token_file=token_file)


def _server(cluster: dict[str, Any], base: pathlib.Path) -> tuple[str, int, ssl.SSLContext | None]:
    url = urllib.parse.urlsplit(cluster.get("server", ""))
    if url.scheme not in ("https", "http") or not url.hostname:
        raise Missing(f"the kubeconfig's server {cluster.get('server')!r} is not an http(s) URL")
    if url.scheme == "http":
        return url.hostname, url.port or 80, None
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=str(base / cluster["certificate-authority"]))
    return url.hostname, url.port or 443, context


def from_kubeconfig(path: pathlib.Path) -> Credentials:
    """The current context's server and token of a kubeconfig file; Missing when it has neither."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise Missing(f"cannot read the kubeconfig {path}: {type(error).__name__}") from None

    def named(kind: str, name: str) -> dict[str, Any]:
        for entry in config.get(f"{kind}s") or []:
            if entry.get("name") == name:
                found: dict[str, Any] = entry.get(kind) or {}
                return found
        raise Missing(f"the kubeconfig {path} has no {kind} {name!r}")

    context = named("context", config.get("current-context", ""))
    host, port, tls = _server(named("cluster", context.get("cluster", "")), path.parent)
    user = named("user", context.get("user", ""))
    if not user.get("token") and not user.get("tokenFile"):
        raise Missing(f"the kubeconfig {path}'s user has no bearer token (token or tokenFile)")
    token_file = str(path.parent / user["tokenFile"]) if user.get("tokenFile") else ""
    return Credentials(host, port, tls, token=user.get("token", ""), token_file=token_file)


def load(kubeconfig: str = "") -> Credentials:
    """Credentials by the module's rule: kubeconfig if given, else in-cluster, else the default kubeconfig."""
    if kubeconfig:
        return from_kubeconfig(pathlib.Path(kubeconfig))
    found = in_cluster()
    if found is not None:
        return found
    default = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
        pathlib.Path.home() / ".kube/config"
    )
    if not os.path.isfile(default):
        raise Missing(
            f"no ServiceAccount token in {SERVICE_ACCOUNT_DIR} and no kubeconfig at {default}: the metrics "
            "endpoint reviews every scraper's token with the API server"
        )
    return from_kubeconfig(pathlib.Path(default))
