"""One place reads the environment: `ssda_assets.settings`, whose list the docs show in full."""

import ast
import re
from pathlib import Path

import ssda_assets
from ssda_assets import settings
from ssda_model import threads

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(ssda_assets.__file__).parent


def _reads_environment(node: ast.AST) -> bool:
    """`os.environ.get(…)`, `os.getenv(…)` or `os.environ[…]` read (a write or a copy for a child
    process is not a setting)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return ast.unparse(node.func) in {"os.environ.get", "os.getenv", "environ.get", "getenv"}
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Load)
        and ast.unparse(node.value) in {"os.environ", "environ"}
    )


def test_only_the_settings_module_reads_the_environment():
    readers = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py" or path.parent != PACKAGE
        for node in ast.walk(ast.parse(path.read_text()))
        if _reads_environment(node)
    ]
    assert readers == []


def test_the_docs_list_every_setting_and_no_other():
    page = (ROOT / "docs" / "platform.md").read_text()
    section = page.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([A-Z_]+)` \|", section, re.M)
    assert listed == list(settings.VARIABLES)


def test_ssda_models_own_variables_are_listed_by_their_names():
    assert {threads.THREADS_ENV, threads.RUNTIME_ENV} <= set(settings.VARIABLES)


def test_defaults_and_overrides(monkeypatch, tmp_path):
    for name in [*settings.per_instance(), "DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    assert settings.dagster_home() == settings.PROJECT_ROOT / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert settings.raw_dir() == tmp_path / "data" / "raw"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("SSDA_DATA_DIR", str(tmp_path / "zone"))
    monkeypatch.setenv("SSDA_KEEP_VERSIONS", " 2 ")
    assert (settings.raw_dir(), settings.keep_versions()) == (tmp_path / "zone" / "raw", 2)
    assert "DAGSTER_HOME" not in settings.per_instance()
