"""The method package stands alone: no platform import anywhere in ssda_model."""

import ast
from pathlib import Path

import ssda_model

FORBIDDEN = {"dagster", "mlflow", "duckdb", "ssda_assets"}


def test_ssda_model_never_imports_the_platform():
    offenders = []
    for path in Path(ssda_model.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
