"""Pinned component versions and the cache directory that holds their binaries."""

import dataclasses
import os
import pathlib

KUBERNETES = "v1.34.4"
ETCD = "v3.6.16"
KUBE_ROUTER = "v2.1.0"
"""The NetworkPolicy engine of the nodes (only its firewall runs). The one version the module proxy here
serves; advisories name flaws in it, which matter little for a test-only engine inside the devcluster's own
namespaces that is never shipped."""

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
    "kube-router",
)


@dataclasses.dataclass(frozen=True)
class Target:
    """One Go module to build inside a throwaway wrapper module."""

    name: str
    """Directory name of the wrapper module under the cache's build directory."""
    module: str
    """Upstream module path, e.g. ``k8s.io/kubernetes``."""
    version: str
    """Upstream module version."""
    sibling_version: str
    """Version that replaces the upstream's local-path (staging) replace directives."""
    packages: tuple[str, ...]
    """Packages to build; the binary is named after the last path element."""
    main_source: str | None = None
    """A ``main.go`` for the wrapper, when the upstream has no installable main package."""
    ldflags: tuple[str, ...] = ()
    """Extra ``-ldflags`` entries (version stamping)."""


def kube_sibling_version(version: str) -> str:
    """Map ``v1.34.4`` to the published staging-module version ``v0.34.4``."""
    major, rest = version.lstrip("v").split(".", 1)
    if major != "1":
        raise ValueError(f"unexpected Kubernetes version {version}")
    return f"v0.{rest}"


def kube_ldflags(version: str) -> tuple[str, ...]:
    """``-X`` flags that stamp the version, otherwise the binaries report v0.0.0."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags: list[str] = []
    # hack/lib/version.sh stamps both packages; client-go's is what `kubectl version` asks the server for.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


ETCD_MAIN = """// Wrapper main: `go install` refuses the etcd server module (replace directives).
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
\tetcdmain.Main(os.Args)
}
"""


def targets() -> tuple[Target, ...]:
    """Everything ``build`` produces, in build order (cheapest first, so progress shows early)."""
    return (
        Target(
            name="etcd",
            module="go.etcd.io/etcd/server/v3",
            version=ETCD,
            sibling_version=ETCD,
            packages=("devcluster.local/etcd",),
            main_source=ETCD_MAIN,
        ),
        Target(
            name="kubernetes",
            module="k8s.io/kubernetes",
            version=KUBERNETES,
            sibling_version=kube_sibling_version(KUBERNETES),
            packages=(
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
            ),
            ldflags=kube_ldflags(KUBERNETES),
        ),
        # Its own wrapper module, so a cache built before kubectl joined only compiles kubectl; the tests,
        # the demo and `kubectl hsm`'s port-forward use this one, matched to the apiserver's version.
        Target(
            name="kubectl",
            module="k8s.io/kubernetes",
            version=KUBERNETES,
            sibling_version=kube_sibling_version(KUBERNETES),
            packages=("k8s.io/kubernetes/cmd/kubectl",),
            ldflags=kube_ldflags(KUBERNETES),
        ),
        # The devcluster's real nodes: same module and version as the control plane, own wrapper module so a
        # cache built before the nodes joined compiles only these two.
        Target(
            name="node",
            module="k8s.io/kubernetes",
            version=KUBERNETES,
            sibling_version=kube_sibling_version(KUBERNETES),
            packages=("k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"),
            ldflags=kube_ldflags(KUBERNETES),
        ),
        Target(
            name="kube-router",
            module="github.com/cloudnativelabs/kube-router/v2",
            version=KUBE_ROUTER,
            sibling_version=KUBE_ROUTER,
            packages=("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",),
        ),
    )


def cache_root() -> pathlib.Path:
    """Root of the devcluster cache; ``HSM_DEVCLUSTER_CACHE`` overrides it (tests of the cold path)."""
    override = os.environ.get("HSM_DEVCLUSTER_CACHE")
    if override:
        return pathlib.Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "hsm-secrets-operator" / "devcluster"


def version_dir() -> pathlib.Path:
    """Cache directory for exactly this set of versions, so a version bump never reuses old binaries."""
    return cache_root() / f"k8s-{KUBERNETES}_etcd-{ETCD}"


def bin_dir() -> pathlib.Path:
    """Where the built binaries live."""
    return version_dir() / "bin"
