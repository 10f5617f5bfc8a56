import dagster as dg

from ssda_assets.definitions import defs


def test_definitions_load():
    definitions = defs()
    assert isinstance(definitions, dg.Definitions)
    definitions.validate_loadable(definitions)


def test_dagster_cli_validates_the_definitions():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(root / "workspace.yaml")],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
