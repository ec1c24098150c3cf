"""Pure parts of the build: binary names, the tools file, cache layout."""

import pathlib

import pytest

from devcluster import build, versions


def test_every_pinned_binary_is_produced_by_a_target() -> None:
    produced = [name for target in versions.targets() for name in build.target_binaries(target)]
    assert sorted(produced) == sorted(versions.BINARIES)


def test_tools_source_imports_each_command_under_a_build_tag() -> None:
    text = build.tools_source(("a/cmd/x", "b/cmd/y"))
    assert text.startswith("//go:build tools\n")
    assert '\t_ "a/cmd/x"\n' in text
    assert '\t_ "b/cmd/y"\n' in text


def test_cache_dir_names_every_version(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("HSM_DEVCLUSTER_CACHE", str(tmp_path))
    name = versions.bin_dir().parent.name
    assert versions.KUBERNETES in name
    assert versions.ETCD in name
    assert versions.bin_dir().is_relative_to(tmp_path)


def test_is_built_needs_every_binary(tmp_path: pathlib.Path) -> None:
    for name in versions.BINARIES[:-1]:
        (tmp_path / name).write_text("")
        (tmp_path / name).chmod(0o755)
    assert not build.is_built(tmp_path)
    last = tmp_path / versions.BINARIES[-1]
    last.write_text("")
    last.chmod(0o755)
    assert build.is_built(tmp_path)
