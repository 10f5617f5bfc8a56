"""The package's face, as scverse packages show theirs: a few names at the top, keyword-only
options after the data, and docstrings that say which AnnData fields a call writes."""

import inspect

import pytest

import ssda_model
from ssda_model.streaming import predict_file
from ssda_model.train.protocol import run_protocol


def test_the_top_level_exports_the_model_its_config_and_its_error():
    assert set(ssda_model.__all__) == {"SSDAModel", "SSDAConfig", "SSDAInputError"}
    assert all(getattr(ssda_model, name) for name in ssda_model.__all__)


@pytest.mark.parametrize(
    "function, data",
    [
        (ssda_model.SSDAModel.fit, ("source", "target", "config")),
        (ssda_model.SSDAModel.predict, ("self", "adata")),
        (predict_file, ("model", "input_path", "output_path")),
        (run_protocol, ("domains", "config")),
    ],
)
def test_options_after_the_data_are_keyword_only(function, data):
    parameters = inspect.signature(function).parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "cls"]
    assert positional == list(data)


def test_predict_documents_the_fields_it_writes():
    doc = ssda_model.SSDAModel.predict.__doc__
    for field in (
        'obs["ssda_score"]',
        'obs["ssda_score_std"]',
        'obs["ssda_label"]',
        'obsm["X_ssda"]',
        'uns["ssda"]',
    ):
        assert field in doc and field in predict_file.__doc__
    for section in ("Parameters", "Returns"):
        assert all(
            section in f.__doc__
            for f in (
                ssda_model.SSDAModel.fit,
                run_protocol,
                ssda_model.SSDAModel.save,
                ssda_model.SSDAModel.load,
                predict_file,
            )
        )
