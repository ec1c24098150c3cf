"""kubectl for what it does best in tests: rendering and applying kustomizations."""

import os
import pathlib
import subprocess

from . import versions


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its stderr."""


def binary() -> str:
    """The kubectl devcluster builds beside the control plane (``$KUBECTL`` overrides)."""
    override = os.environ.get("KUBECTL")
    if override:
        return override
    built = versions.bin_dir() / "kubectl"
    if not os.access(built, os.X_OK):
        raise KubectlError(f"{built} is missing: run `make setup` (python -m devcluster build)")
    return str(built)


def run(kubeconfig: pathlib.Path, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
    """Run kubectl against the cluster of ``kubeconfig`` and return its stdout."""
    proc = subprocess.run(
        [binary(), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def kustomize(directory: pathlib.Path) -> str:
    """``kubectl kustomize <dir>``: the rendered manifests (needs no cluster)."""
    proc = subprocess.run(
        [binary(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise KubectlError(f"kubectl kustomize {directory} failed: {proc.stderr.strip()}")
    return proc.stdout


def apply_kustomization(kubeconfig: pathlib.Path, directory: pathlib.Path) -> str:
    """Render ``directory`` with kustomize and server-side apply the result."""
    manifests = kustomize(directory)
    return run(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifests)
