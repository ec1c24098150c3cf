"""A SoftHSM2 token in the Go operator's layout for test_import_legacy.py, in its own process (the test
process loads no PKCS#11 module): the agent tests' legacy_token.py writes it, and this counts what it holds.

Usage, with SOFTHSM2_CONF set and the PIN on stdin:
  python legacy_token_tool.py populate LABEL PATHS  -> JSON: what was written (legacy_token.LegacyFixture)
  python legacy_token_tool.py count LABEL           -> JSON: the token's data objects by CKA_APPLICATION
"""

from __future__ import annotations

import base64
import collections
import importlib.util
import json
import pathlib
import sys

import pkcs11

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "services" / "agent" / "tests" / "legacy_token.py"
_spec = importlib.util.spec_from_file_location("legacy_token", SOURCE)
assert _spec is not None
assert _spec.loader is not None
legacy_token = importlib.util.module_from_spec(_spec)
sys.modules["legacy_token"] = legacy_token  # its dataclasses look their module up
_spec.loader.exec_module(legacy_token)


def populate(label: str, pin: str, paths: int) -> dict[str, object]:
    fixture = legacy_token.populate(label, pin, paths)
    return {
        "objects": fixture.objects,
        "known": {path: list(keys) for path, keys in fixture.known.items()},
        "secrets": {
            path: {key: base64.b64encode(value).decode() for key, value in data.items()}
            for path, data in fixture.secrets.items()
        },
        "metadata": sorted(fixture.metadata),
        "ready": sorted(fixture.ready),
        "incomplete": {path: list(keys) for path, keys in fixture.incomplete.items()},
        "ambiguousLabels": sorted(fixture.ambiguous_labels),
        "ambiguousPaths": sorted(fixture.ambiguous_paths),
        "empty": sorted(fixture.empty),
        "invalid": sorted(fixture.invalid),
    }


def count(label: str, pin: str) -> dict[str, int]:
    lib = pkcs11.lib(legacy_token.MODULE)
    found: collections.Counter[str] = collections.Counter()
    with lib.get_token(token_label=label).open(user_pin=pin) as session:
        for obj in session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA}):
            application = obj[pkcs11.Attribute.APPLICATION]
            found[application.decode() if isinstance(application, bytes) else str(application)] += 1
    return dict(found)


def main(argv: list[str]) -> None:
    pin = sys.stdin.read().strip()
    if argv[0] == "populate":
        print(json.dumps(populate(argv[1], pin, int(argv[2]))))
    elif argv[0] == "count":
        print(json.dumps(count(argv[1], pin)))
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
