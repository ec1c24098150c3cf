"""Import boundaries of hsm_discovery (docs/architecture.md): libudev, Kubernetes and gRPC stay put."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "hsm_discovery"
PLUGIN_RPC = {"plugin.endpoint", "plugin.kubelet", "plugin.servicer"}
ALLOWED = {
    "pyudev": {"scan", "monitor"},
    "kubernetes": {"kube"},
    "urllib3": {"kube"},
    "grpc": PLUGIN_RPC,
    "hsmproto": PLUGIN_RPC,
}


def imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("library", sorted(ALLOWED))
def test_library_is_imported_only_by_its_modules(library: str) -> None:
    modules = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}
    importers = {name for name, path in modules.items() if library in imported_roots(path)}
    assert importers <= ALLOWED[library]
    assert importers  # the rule must still be about something
