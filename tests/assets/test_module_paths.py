"""Module paths written outside the code keep naming importable code after a move: the pyfunc path
of models registered before issue 27, the run launcher in the instance configs, the entry point of
`ssda predict --model models:/…`, and the `python -m` commands of the Makefile and the docs."""

import importlib
import importlib.util
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_models_registered_before_the_regrouping_find_their_pyfunc():
    from ssda_assets.pyfunc_model import SSDAPyfunc
    from ssda_assets.registry.pyfunc import SSDAPyfunc as current

    assert SSDAPyfunc is current


def test_the_instance_configs_name_a_run_launcher_that_exists():
    for config in (ROOT / "dagster_home" / "dagster.yaml", ROOT / "deploy" / "team" / "dagster.yaml"):
        launcher = yaml.safe_load(config.read_text())["run_launcher"]
        assert hasattr(importlib.import_module(launcher["module"]), launcher["class"]), config


def test_the_model_uri_entry_point_names_a_function_that_exists():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for target in pyproject["project"]["entry-points"]["ssda4drug.model_uris"].values():
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target


def test_every_python_m_command_written_down_names_a_module():
    texts = [
        ROOT / "Makefile",
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "bench").glob("*.py"),
    ]
    named = {m for path in texts for m in re.findall(r"-m (ssda_assets[\w.]*)", path.read_text())}
    assert named and all(importlib.util.find_spec(m) is not None for m in named), named
