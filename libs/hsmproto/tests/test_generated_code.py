import importlib.util
import pathlib
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE_ROOT = ROOT / "src" / "hsmproto"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("hsmproto_generate", ROOT / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("hsmproto")
    GENERATOR.generate(out)
    return out


@pytest.mark.parametrize("contract", GENERATOR.CONTRACTS, ids=lambda c: c.proto)
def test_committed_code_matches_a_fresh_generation(contract: Any, fresh: pathlib.Path) -> None:
    for name in contract.generated:
        committed = (PACKAGE_ROOT / contract.package / name).read_text()
        assert committed == (fresh / contract.package / name).read_text(), (
            f"{name} is stale: run `make proto`"
        )


@pytest.mark.parametrize("contract", GENERATOR.CONTRACTS, ids=lambda c: c.proto)
def test_generated_imports_are_package_qualified(contract: Any) -> None:
    stem = pathlib.PurePosixPath(contract.proto).stem
    text = (PACKAGE_ROOT / contract.package / f"{stem}_pb2_grpc.py").read_text()
    assert f"from {contract.module} import {stem}_pb2" in text
    assert f"from {contract.protoc_module} " not in text
