import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generator() -> object:
    spec = importlib.util.spec_from_file_location("hsmproto_generate", ROOT / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_code_matches_a_fresh_generation(generator: object, tmp_path: pathlib.Path) -> None:
    generator.generate(tmp_path)  # type: ignore[attr-defined]
    for name in generator.GENERATED:  # type: ignore[attr-defined]
        committed = (ROOT / "src" / "hsmproto" / "v1" / name).read_text()
        assert committed == (tmp_path / name).read_text(), f"{name} is stale: run `make proto`"


def test_generated_imports_are_package_qualified() -> None:
    text = (ROOT / "src" / "hsmproto" / "v1" / "hsm_pb2_grpc.py").read_text()
    assert "from hsmproto.v1 import hsm_pb2" in text
    assert "from hsm.v1" not in text
