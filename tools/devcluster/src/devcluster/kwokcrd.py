"""kwok's PortForward CRD, read from the Go module kwok was built from, installed before kwok starts."""

import json
import pathlib
import subprocess
from typing import Any

import yaml

from . import build, kubeapi, versions

_CRD_FILE = "kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml"
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def module_dir() -> pathlib.Path:
    """kwok's module source (``go mod download`` fetches it when the module cache lacks it)."""
    found = subprocess.run(
        [build.go_binary(), "mod", "download", "-json", f"sigs.k8s.io/kwok@{versions.KWOK}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if found.returncode != 0:
        raise build.BuildError(f"go mod download sigs.k8s.io/kwok failed: {found.stderr.strip()[-2000:]}")
    return pathlib.Path(json.loads(found.stdout)["Dir"])


def port_forward_crd() -> dict[str, Any]:
    """The PortForward CustomResourceDefinition of the pinned kwok version."""
    crd: dict[str, Any] = yaml.safe_load((module_dir() / _CRD_FILE).read_text())
    return crd


def install(client: kubeapi.Client) -> str:
    """Create the PortForward CRD; returns its name (wait for ``established`` before kwok starts)."""
    crd = port_forward_crd()
    client.request("POST", _CRDS, crd)
    return str(crd["metadata"]["name"])


def established(client: kubeapi.Client, name: str) -> bool:
    """True once the apiserver serves the CRD's resource."""
    conditions = client.get(f"{_CRDS}/{name}").get("status", {}).get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
