"""Regenerate the Python modules of every contract under proto/ with grpcio-tools.

protoc names Python modules after the .proto path (hsm/v1 → ``hsm.v1``), while the packages we ship live
under ``hsmproto`` (``hsmproto.v1``, ``hsmproto.deviceplugin.v1beta1``); the generated imports are
rewritten to the package-qualified name so nothing relies on ``hsm`` or ``deviceplugin`` being top-level
modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE / "proto"
PACKAGE_ROOT = HERE / "src" / "hsmproto"


@dataclasses.dataclass(frozen=True)
class Contract:
    """One .proto file and the package its modules go to."""

    proto: str
    """Path under proto/; its directory is the module path protoc writes (``hsm/v1`` → ``hsm.v1``)."""
    package: str
    """Where the modules go, relative to the hsmproto package (``v1`` → ``hsmproto.v1``)."""

    @property
    def generated(self) -> tuple[str, ...]:
        stem = pathlib.PurePosixPath(self.proto).stem
        return (f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py")

    @property
    def protoc_module(self) -> str:
        return str(pathlib.PurePosixPath(self.proto).parent).replace("/", ".")

    @property
    def module(self) -> str:
        return "hsmproto." + self.package.replace("/", ".")


CONTRACTS = (
    Contract(proto="hsm/v1/hsm.proto", package="v1"),
    Contract(proto="deviceplugin/v1beta1/api.proto", package="deviceplugin/v1beta1"),
)


def generate(out_root: pathlib.Path) -> None:
    """Write the generated modules of every contract under out_root (the hsmproto dir), imports rewritten."""
    for contract in CONTRACTS:
        with tempfile.TemporaryDirectory() as raw:
            args = [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"--python_out={raw}",
                f"--pyi_out={raw}",
                f"--grpc_python_out={raw}",
                contract.proto,
            ]
            if protoc.main(args) != 0:
                raise RuntimeError(f"protoc failed for {contract.proto}")
            out_dir = out_root / contract.package
            out_dir.mkdir(parents=True, exist_ok=True)
            written = pathlib.Path(raw) / pathlib.PurePosixPath(contract.proto).parent
            for name in contract.generated:
                text = (written / name).read_text()
                text = text.replace(f"from {contract.protoc_module} import", f"from {contract.module} import")
                (out_dir / name).write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=PACKAGE_ROOT, help="the hsmproto directory")
    args = parser.parse_args()
    generate(args.out)
    # Elsewhere than the source tree, the generated packages still need their __init__ modules to import.
    for contract in CONTRACTS:
        parts = pathlib.PurePosixPath(contract.package).parts
        for depth in range(1, len(parts) + 1):
            init = args.out.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                shutil.copyfile(PACKAGE_ROOT.joinpath(*parts[:depth], "__init__.py"), init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
