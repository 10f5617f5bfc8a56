"""The method package stands alone: no platform import anywhere in ssda_model, but MLflow inside
the functions that read `models:/` URIs for `ssda predict` (imported only when one is given)."""

import ast
from pathlib import Path

import ssda_model

FORBIDDEN = {"dagster", "mlflow", "duckdb", "ssda_assets"}
LAZY_MLFLOW = "registry_uri.py"  # mlflow inside its functions only


def _lazy_imports(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside function bodies."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    }


def test_ssda_model_never_imports_the_platform():
    offenders = []
    for path in Path(ssda_model.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        lazy = _lazy_imports(tree) if path.name == LAZY_MLFLOW else set()
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if id(node) in lazy and all(n.split(".")[0] == "mlflow" for n in names):
                continue  # MLflow, imported only when a models:/ URI is read
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
