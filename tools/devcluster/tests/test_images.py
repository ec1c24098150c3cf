"""Pure parts of the image build: apt sources, the base recipe's hash, build inputs, names, podman config."""

import dataclasses
import pathlib
import tomllib
from typing import Any

import pytest

from devcluster import _aptsources, _debianbase, images, podman

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def _recipe(**changes: Any) -> _debianbase.Recipe:
    recipe = _debianbase.Recipe(
        release="bookworm",
        packages=_debianbase.PACKAGES,
        mirror="http://mirror.example/debian",
        sources_list="deb http://mirror.example/debian bookworm main\n",
        ca_certificates=(("proxy.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n"),),
    )
    return dataclasses.replace(recipe, **changes)


def test_one_line_sources_skip_comments_and_options() -> None:
    text = (
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib # x\n\n"
    )
    assert _aptsources.parse_one_line_sources(text) == [
        _aptsources.AptSource(("deb",), "http://m.example/debian", ("bookworm",), ("main", "contrib"))
    ]


def test_deb822_sources_skip_comments_and_disabled_paragraphs() -> None:
    found = _aptsources.parse_deb822_sources(DEB822)
    assert [(s.uri, s.suites) for s in found] == [
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
    ]


def test_deb822_sources_read_continuation_lines_and_several_uris() -> None:
    text = (
        "Types: deb deb-src\nURIs: http://a.example/debian\n http://b.example/debian\n"
        "Suites: bookworm\nComponents: main\n"
    )
    found = _aptsources.parse_deb822_sources(text)
    assert [s.uri for s in found] == ["http://a.example/debian", "http://b.example/debian"]
    assert found[0].types == ("deb", "deb-src")


def test_host_sources_read_only_the_files_apt_reads(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://one.example/debian bookworm main\n")
    drop_ins = tmp_path / "sources.list.d"
    drop_ins.mkdir()
    (drop_ins / "debian.sources").write_text(DEB822)
    (drop_ins / "other.list.disabled-by-admin").write_text("deb http://off.example/debian bookworm main\n")
    uris = [source.uri for source in _aptsources.host_sources(tmp_path)]
    assert uris == [
        "http://one.example/debian",
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    ]


def test_release_sources_leave_out_third_party_repositories() -> None:
    sources = _aptsources.parse_deb822_sources(DEB822) + _aptsources.parse_one_line_sources(
        "deb https://sdk.example/apt cloud-sdk-bookworm main\n"
        "deb https://docker.example/linux/debian bookworm stable\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    kept = _aptsources.release_sources(sources, "bookworm")
    assert [s.uri for s in kept] == ["http://mirror.example/debian", "http://mirror.example/debian-security"]


def test_debian_mirror_is_the_source_of_the_release_suite_itself() -> None:
    sources = list(reversed(_aptsources.parse_deb822_sources(DEB822)))
    assert _aptsources.debian_mirror(sources, "bookworm") == "http://mirror.example/debian"


def test_debian_mirror_missing_is_an_error() -> None:
    sources = _aptsources.parse_one_line_sources("deb http://m.example/debian bullseye main\n")
    with pytest.raises(images.ImageError, match="bookworm"):
        _aptsources.debian_mirror(sources, "bookworm")


def test_sources_list_has_one_line_per_suite() -> None:
    assert _aptsources.sources_list(_aptsources.parse_deb822_sources(DEB822), "bookworm") == (
        "deb http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian bookworm-updates main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
    )


def test_recipe_hash_is_stable() -> None:
    assert _debianbase.recipe_hash(_recipe()) == _debianbase.recipe_hash(_recipe())


@pytest.mark.parametrize(
    "changes",
    [
        {"ca_certificates": (("proxy.crt", b"-----BEGIN CERTIFICATE-----\nBBBB\n"),)},
        {"ca_certificates": ()},
        {"mirror": "http://other.example/debian"},
        {"packages": ("python3",)},
        {"steps": "next"},
    ],
)
def test_recipe_hash_changes_with_any_input(changes: dict[str, object]) -> None:
    assert _debianbase.recipe_hash(_recipe(**changes)) != _debianbase.recipe_hash(_recipe())


def test_ca_certificates_are_the_crt_files_sorted_by_path(tmp_path: pathlib.Path) -> None:
    (tmp_path / "b.crt").write_bytes(b"b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.crt").write_bytes(b"a")
    (tmp_path / "notes.txt").write_bytes(b"x")
    assert _debianbase.ca_certificates(tmp_path) == (("b.crt", b"b"), ("sub/a.crt", b"a"))


def test_ca_certificates_of_a_missing_directory_are_none(tmp_path: pathlib.Path) -> None:
    assert _debianbase.ca_certificates(tmp_path / "absent") == ()


def test_image_name_is_what_containerd_resolves_a_short_name_to() -> None:
    assert images.image_name("agent", "e2e") == "docker.io/library/hsm-agent:e2e"


def test_archive_name_changes_with_the_image_id() -> None:
    old = images.Image(name="docker.io/library/hsm-agent:e2e", id="a" * 64, size=1)
    new = dataclasses.replace(old, id="b" * 64)
    assert images.archive_name(old) == "docker.io_library_hsm-agent_e2e@" + "a" * 16 + ".tar"
    assert images.archive_name(old) != images.archive_name(new)


def test_describe_gives_size_in_megabytes_and_seconds() -> None:
    line = images.describe(images.Image(name="x:1", id="c" * 64, size=197_700_000), 16.24)
    assert "197.7 MB" in line
    assert "16.2 s" in line


def test_podman_config_renders_every_placeholder(tmp_path: pathlib.Path) -> None:
    values = podman.placeholders(tmp_path)
    for name in ("containers.conf", "storage.conf"):
        template = (pathlib.Path(podman.__file__).parent / "containers" / name).read_text()
        tomllib.loads(podman.render(template, values))


def test_podman_storage_lives_in_the_cache(tmp_path: pathlib.Path) -> None:
    template = (pathlib.Path(podman.__file__).parent / "containers" / "storage.conf").read_text()
    storage = tomllib.loads(podman.render(template, podman.placeholders(tmp_path)))["storage"]
    assert storage["driver"] == "overlay"
    assert storage["graphroot"] == str(tmp_path / "storage")
    assert storage["runroot"] == str(tmp_path / "run")


def test_podman_config_template_without_its_value_is_an_error() -> None:
    with pytest.raises(KeyError):
        podman.render('graphroot = "$graphroot"', {})


def test_registries_conf_names_no_registry() -> None:
    path = pathlib.Path(podman.__file__).parent / "containers" / "registries.conf"
    assert tomllib.loads(path.read_text())["unqualified-search-registries"] == []


def test_environment_points_podman_at_the_project_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    env = podman.environment()
    root = tmp_path / "hsm-secrets-operator" / "containers"
    assert env["CONTAINERS_STORAGE_CONF"] == str(root / "etc" / "storage.conf")
    assert str(root / "storage") in pathlib.Path(env["CONTAINERS_STORAGE_CONF"]).read_text()
    assert tomllib.loads(pathlib.Path(env["CONTAINERS_CONF"]).read_text())["engine"]["runtime"] == "runc"
    assert pathlib.Path(env["CONTAINERS_REGISTRIES_CONF"]).is_file()
    assert (root / "storage").is_dir()
