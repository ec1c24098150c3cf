"""Pants cannot be installed here, so its BUILD files are checked statically against the tree."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import tomllib
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MEMBERS = sorted(
    path.parent
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    for path in ROOT.glob(f"{pattern}/pyproject.toml")
)
BUILD_FILES = sorted(p for p in ROOT.rglob("BUILD") if ".venv" not in p.parts)


def targets(build: pathlib.Path) -> list[tuple[str, dict[str, Any]]]:
    """(target type, literal keyword arguments) of every top-level call in a BUILD file."""
    found = []
    for node in ast.parse(build.read_text(), filename=str(build)).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            assert isinstance(call.func, ast.Name), f"{build}: unexpected call"
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
            found.append((call.func.id, kwargs))
    return found


def test_every_workspace_member_has_a_build_file() -> None:
    assert MEMBERS, "no workspace members found"
    missing = [str(m.relative_to(ROOT)) for m in MEMBERS if not (m / "BUILD").exists()]
    assert not missing, f"packages without a BUILD file: {missing}"


def test_every_directory_with_python_outside_packages_has_a_build_file() -> None:
    for directory in ("tests/e2e", "tests/static", "bench"):
        if any((ROOT / directory).glob("*.py")):
            assert (ROOT / directory / "BUILD").exists(), f"{directory} has Python but no BUILD"


@pytest.mark.parametrize("build", BUILD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_build_files_parse_and_hold_only_literal_targets(build: pathlib.Path) -> None:
    assert targets(build), f"{build} declares no target"


def _function_exists(member: pathlib.Path, entry_point: str) -> bool:
    module, _, function = entry_point.partition(":")
    relative = pathlib.Path(*module.split("."))
    for candidate in (member / "src" / f"{relative}.py", member / "src" / relative / "__init__.py"):
        if candidate.exists():
            tree = ast.parse(candidate.read_text())
            return any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body)
    return False


def test_pex_entry_points_resolve_to_functions() -> None:
    checked = 0
    for build in BUILD_FILES:
        for kind, kwargs in targets(build):
            if kind == "pex_binary":
                entry_point = kwargs["entry_point"]
                assert _function_exists(build.parent, entry_point), f"{build}: {entry_point} does not exist"
                checked += 1
    assert checked >= 3, "every service declares a pex_binary"


def test_docker_images_have_their_dockerfiles() -> None:
    checked = 0
    for build in BUILD_FILES:
        for kind, kwargs in targets(build):
            if kind == "docker_image":
                dockerfile = build.parent / kwargs.get("source", "Dockerfile")
                assert dockerfile.exists(), f"{build}: {dockerfile} is missing"
                checked += 1
    assert checked >= 3, "every service declares a docker_image"


def test_services_declare_pex_and_docker_targets() -> None:
    for member in MEMBERS:
        if member.parent.name != "services":
            continue
        kinds = {kind for kind, _ in targets(member / "BUILD")}
        assert {"python_sources", "python_tests", "pex_binary", "docker_image"} <= kinds, member


def test_pants_toml_names_the_backends_and_one_resolve() -> None:
    config = tomllib.loads((ROOT / "pants.toml").read_text())
    backends = set(config["GLOBAL"]["backend_packages"])
    assert {
        "pants.backend.python",
        "pants.backend.codegen.protobuf.python",
        "pants.backend.docker",
    } <= backends
    assert config["python"]["interpreter_constraints"] == ["CPython==3.11.*"]
    assert list(config["python"]["resolves"]) == ["python-default"]


def test_pants_requirements_match_the_uv_lock() -> None:
    exported = subprocess.run(
        ["uv", "export", "--frozen", "--all-packages", "--no-dev", "--no-emit-workspace", "--no-hashes",
         "--no-header", "--quiet"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    committed = (ROOT / "3rdparty" / "python" / "requirements.txt").read_text()
    assert committed == exported, "3rdparty/python/requirements.txt is stale: run `make pants-requirements`"
