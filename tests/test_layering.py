"""The method package stands alone: no platform import anywhere in ssda_model, nor in the test
modules that the GPU check (bench/gpu_check.py) runs where only the method's dependencies are."""

import ast
from pathlib import Path

import pytest

import ssda_model

FORBIDDEN = {"dagster", "mlflow", "duckdb", "ssda_assets"}
TESTS = Path(__file__).resolve().parent
METHOD_ONLY_TESTS = ("conftest.py", "helpers.py", "model/test_gpu.py")


def platform_imports(path: Path) -> list[str]:
    """Every import in `path` of a platform package, as "file: module"."""
    offenders = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    return offenders


def test_ssda_model_never_imports_the_platform():
    package = Path(ssda_model.__file__).parent
    assert [o for path in package.rglob("*.py") for o in platform_imports(path)] == []


@pytest.mark.parametrize("module", METHOD_ONLY_TESTS)
def test_the_gpu_checks_test_modules_need_only_the_method(module):
    assert platform_imports(TESTS / module) == []
