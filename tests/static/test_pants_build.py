"""Pants resolves the versions the uv workspace locks: its requirements are exported from uv.lock."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_pants_requirements_match_the_uv_lock() -> None:
    exported = subprocess.run(
        ["uv", "export", "--frozen", "--all-packages", "--no-emit-workspace", "--no-hashes", "--no-header",
         "--quiet"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    committed = (ROOT / "3rdparty" / "python" / "requirements.txt").read_text()
    assert committed == exported, "3rdparty/python/requirements.txt is stale: run `make pants-lock`"
