"""Regenerate hsmproto.v1 from proto/hsm/v1/hsm.proto with grpcio-tools.

protoc names Python modules after the .proto path (hsm/v1 → ``hsm.v1``), while the package we ship is
``hsmproto.v1``; the generated imports are rewritten to the package-qualified name so nothing relies
on ``hsm`` being a top-level module.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE / "proto"
PROTO_FILE = "hsm/v1/hsm.proto"
PACKAGE_DIR = HERE / "src" / "hsmproto" / "v1"
GENERATED = ("hsm_pb2.py", "hsm_pb2.pyi", "hsm_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> None:
    """Write the generated modules of hsm.proto into out_dir, imports rewritten."""
    with tempfile.TemporaryDirectory() as raw:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            PROTO_FILE,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {PROTO_FILE}")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            text = (pathlib.Path(raw) / "hsm" / "v1" / name).read_text()
            text = text.replace("from hsm.v1 import", "from hsmproto.v1 import")
            (out_dir / name).write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=PACKAGE_DIR, help="output directory")
    args = parser.parse_args()
    generate(args.out)
    init = args.out / "__init__.py"
    if not init.exists():
        shutil.copyfile(PACKAGE_DIR / "__init__.py", init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
