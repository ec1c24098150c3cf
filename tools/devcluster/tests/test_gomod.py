"""The wrapper go.mod generated from an upstream go.mod."""

from devcluster import gomod, versions

KUBERNETES_LIKE = """\
// generated
module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0 // indirect
)

require k8s.io/kms v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kms => ./staging/src/k8s.io/kms
\tk8s.io/unused => ./staging/src/k8s.io/unused
)

replace github.com/x/y => github.com/fork/y v1.2.3
"""


def test_parse_reads_module_go_godebug_requires_and_replaces() -> None:
    mod = gomod.parse(KUBERNETES_LIKE)
    assert mod.module == "k8s.io/kubernetes"
    assert mod.go == "1.24.0"
    assert mod.godebug == ("default=go1.24",)
    assert mod.requires == {
        "github.com/blang/semver/v4": "v4.0.0",
        "k8s.io/api": "v0.0.0",
        "k8s.io/client-go": "v0.0.0",
        "k8s.io/kms": "v0.0.0",
    }
    assert gomod.Replace("github.com/x/y", "github.com/fork/y", "v1.2.3") in mod.replaces


def test_wrapper_maps_required_staging_modules_to_published_versions() -> None:
    text = gomod.wrapper(gomod.parse(KUBERNETES_LIKE), "v1.34.4", "v0.34.4", "devcluster.local/kubernetes")
    assert "\tk8s.io/api => k8s.io/api v0.34.4" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in text
    assert "\tk8s.io/kms => k8s.io/kms v0.34.4" in text


def test_wrapper_drops_local_replaces_of_modules_not_required() -> None:
    text = gomod.wrapper(gomod.parse(KUBERNETES_LIKE), "v1.34.4", "v0.34.4", "w")
    assert "k8s.io/unused" not in text
    assert "./staging" not in text


def test_wrapper_keeps_module_replaces_godebug_and_go_version() -> None:
    text = gomod.wrapper(gomod.parse(KUBERNETES_LIKE), "v1.34.4", "v0.34.4", "devcluster.local/kubernetes")
    assert text.startswith("module devcluster.local/kubernetes\n")
    assert "\ngo 1.24.0\n" in text
    assert "\ngodebug default=go1.24\n" in text
    assert "\trequire" not in text
    assert "\nrequire k8s.io/kubernetes v1.34.4\n" in text
    assert "\tgithub.com/x/y => github.com/fork/y v1.2.3" in text


def test_kube_sibling_version_maps_v1_to_v0() -> None:
    assert versions.kube_sibling_version("v1.34.4") == "v0.34.4"


def test_kube_ldflags_stamp_version_major_and_minor() -> None:
    flags = versions.kube_ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMajor=1" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
