"""kubectl for what it does best in tests: rendering and applying kustomizations."""

import os
import pathlib
import shutil
import subprocess


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its stderr."""


def binary() -> str:
    """kubectl from PATH (``$KUBECTL`` overrides)."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        raise KubectlError("kubectl not found on PATH")
    return found


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
