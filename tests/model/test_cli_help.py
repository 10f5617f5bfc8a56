"""The `ssda` command explains itself: help on every option, `--version`, and the library's log
lines shown on stderr by the command line (the library itself prints nothing)."""

import argparse
import logging
from importlib.metadata import version

import pytest

from ssda_model.cli import build_parser, main


def _options(parser: argparse.ArgumentParser, command: str = "ssda"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"ssda {name}")
        else:
            yield command, action


def test_every_option_of_every_command_has_help():
    undocumented = [(command, a.dest) for command, a in _options(build_parser()) if not a.help]
    assert undocumented == []
    for command in ("fit", "benchmark", "predict"):  # every help text formats (%(default)s)
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([command, "--help"])
        assert done.value.code == 0


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ssda {version('ssda4drug')}"


def test_the_command_shows_library_log_lines_on_stderr(capsys):
    main(["predict", "--model", "missing", "--input", "missing.h5ad", "--out", "x.h5ad"])
    capsys.readouterr()
    logging.getLogger("ssda_model.some_module").info("progress line")
    assert capsys.readouterr().err == "progress line\n"
