"""Every binary `./pants package` builds runs from its file and prints its help.

The PEX files are built by Pants for this test (``runtime_package_dependencies`` in tests/static/BUILD), so
it runs through ``./pants test``.
"""

import os
import pathlib
import subprocess

import pytest


@pytest.mark.parametrize(
    ("path", "usage", "expected"),
    [
        ("services.agent/hsm-agent.pex", "usage: hsm-agent", "--pin-file"),
        ("services.discovery/hsm-discovery.pex", "usage: hsm-discovery", "--rescan-interval"),
        ("services.manager/hsm-manager.pex", "usage: hsm-manager", "operator"),
        ("tools.kubectl-hsm/kubectl-hsm.pex", "usage: kubectl hsm", "--api-namespace"),
    ],
)
def test_the_built_binary_prints_its_help(path: str, usage: str, expected: str) -> None:
    binary = pathlib.Path(path)
    assert binary.is_file(), f"{path} was not built: run this test with `./pants test tests/static::`"
    # Only what the PEX carries: none of the test's own import paths.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PEX_")}
    result = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    assert usage in result.stdout
    assert expected in result.stdout
