"""Writes a test agent's SoftHSM2 token in the Go operator's layout with the agent tests' legacy_token.py
(in another process: the test process does not load PKCS#11) and prints what it wrote as JSON.

Usage: SOFTHSM2_CONF=... python legacy_tokens.py LABEL PATHS, with the PIN on stdin.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import pathlib
import sys

SOURCE = pathlib.Path(__file__).resolve().parents[3] / "agent" / "tests" / "legacy_token.py"


def main(label: str, paths: int) -> None:
    spec = importlib.util.spec_from_file_location("legacy_token", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["legacy_token"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    fixture = module.populate(label, sys.stdin.read().strip(), paths)
    print(
        json.dumps(
            {
                "objects": fixture.objects,
                "known": {path: list(keys) for path, keys in fixture.known.items()},
                "secrets": {
                    path: {key: base64.b64encode(value).decode() for key, value in data.items()}
                    for path, data in fixture.secrets.items()
                },
                "ready": sorted(fixture.ready),
                "incomplete": sorted(fixture.incomplete),
                "ambiguousLabels": sorted(fixture.ambiguous_labels),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
