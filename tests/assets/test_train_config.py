"""One source of truth for hyper-parameters: the launchpad's defaults are SSDAConfig's (but the
platform's strict protocol), and a deployment can change them without touching code."""

import dataclasses

import pytest

from ssda_assets.defs.training import config
from ssda_model.cli import build_parser
from ssda_model.config import SSDAConfig
from ssda_model.errors import SSDAInputError


def test_launchpad_defaults_are_ssda_configs_but_the_strict_protocol():
    launchpad = config.TrainConfig().to_ssda()
    assert launchpad == SSDAConfig(protocol="strict")
    assert set(config.FIELDS) <= {f.name for f in dataclasses.fields(SSDAConfig)}


def test_command_line_defaults_are_ssda_configs():
    args = build_parser().parse_args(["fit", "--source", "s", "--target", "t", "--out", "o"])
    defaults = SSDAConfig()
    for name in (
        "method",
        "shots",
        "repetitions",
        "protocol",
        "epochs",
        "device",
        "scaling",
        "precision",
        "batch_repetitions",
    ):
        assert getattr(args, name) == getattr(defaults, name), name


def test_a_deployment_sets_its_own_defaults(monkeypatch):
    monkeypatch.setenv(config.TRAIN_DEFAULTS, '{"epochs": 4, "shots": "all"}')
    small = config._train_config()().to_ssda()
    assert (small.epochs, small.shots, small.protocol) == (4, "all", "strict")
    monkeypatch.setenv(config.TRAIN_DEFAULTS, '{"epoch": 4}')
    with pytest.raises(
        SSDAInputError, match="SSDA_TRAIN_DEFAULTS: expected a JSON object of the fields method"
    ):
        config._train_config()
