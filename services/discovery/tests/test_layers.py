"""Import boundaries of hsm_discovery (docs/architecture.md): libudev and Kubernetes stay in their modules."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "hsm_discovery"
ALLOWED = {"pyudev": {"scan", "monitor"}, "kubernetes": {"kube"}, "urllib3": {"kube"}}


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
    importers = {p.stem for p in PACKAGE.glob("*.py") if library in imported_roots(p)}
    assert importers <= ALLOWED[library]
    assert importers  # the rule must still be about something
