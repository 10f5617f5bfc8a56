"""`ssda predict --model models:/…`: a version of a real MLflow registry (sqlite, in tmp_path), logged
and registered by the platform's own functions, scores like the folder it was saved from."""

from pathlib import Path

import anndata as ad
import mlflow
import numpy as np
import pytest

from ssda_model.cli import main
from ssda_model.model import SSDAModel
from tests.helpers import FAST, run_error
from tests.platform_helpers import fresh_mlflow, platform_store, register

NAME = "ssda-test-registry"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, small_pair) -> tuple[str, Path]:
    """The store's URI (version 1: champion and challenger) and the same model saved as a folder."""
    root = tmp_path_factory.mktemp("registry")
    model = SSDAModel.fit(*small_pair, FAST, progress=False)
    with platform_store(root) as tracking:
        registration = register(tracking, model, NAME, small_pair[1])
    assert registration.version == 1 and registration.aliases == ["challenger", "champion"]
    return tracking.tracking_uri, model.save(root / "folder")


@pytest.fixture
def fresh():
    with fresh_mlflow():
        yield


def predict(model: str, cells: Path, out: Path, *extra: str) -> ad.AnnData:
    assert main(["predict", "--model", model, "--input", str(cells), "--out", str(out), *extra]) == 0
    return ad.read_h5ad(out)


def test_registry_versions_score_like_the_folder(tmp_path, fresh, monkeypatch, registry, pair_files):
    store, folder = registry
    cells = pair_files[1]
    expected = predict(str(folder), cells, tmp_path / "folder.h5ad").obs["ssda_score"].to_numpy()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # read by MLflow itself
    champion = predict(f"models:/{NAME}@champion", cells, tmp_path / "champion.h5ad")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    pinned = predict(f"models:/{NAME}/1", cells, tmp_path / "v1.h5ad", "--tracking-uri", store)
    challenger = predict(f"models:/{NAME}@challenger", cells, tmp_path / "c.h5ad", "--tracking-uri", store)
    for scored in (champion, pinned, challenger):
        # the same weights and arithmetic as the folder: equal to float32 rounding of the reads
        np.testing.assert_allclose(scored.obs["ssda_score"].to_numpy(), expected, rtol=0, atol=1e-6)
    info = champion.uns["ssda"]
    assert info["model"] == f"models:/{NAME}/1" and int(info["model_version"]) == 1  # pinned, as the platform
    assert info["model_run_id"] == mlflow.MlflowClient(store, store).get_model_version(NAME, "1").run_id


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"models:/{NAME}@gold", "has no alias 'gold'; its aliases: challenger → v1, champion → v1"),
        (f"models:/{NAME}/7", "has no version 7; its versions: 1"),
        ("models:/ssda-no-such-model@champion", "no registered model named 'ssda-no-such-model' in"),
        (f"models:/{NAME}", "expected models:/<name>@<alias> or models:/<name>/<version>"),
    ],
)
def test_registry_lookup_failures_are_one_line(tmp_path, capsys, registry, pair_files, uri, expected):
    store, _ = registry
    argv = ["predict", "--model", uri, "--input", str(pair_files[1]), "--out", str(tmp_path / "o.h5ad")]
    line = run_error(capsys, [*argv, "--tracking-uri", store])
    assert line.startswith(f"error: {uri}: ") and expected in line, line
    assert not (tmp_path / "o.h5ad").exists()


def test_unreachable_registry_is_one_line(tmp_path, capsys, fresh, monkeypatch, pair_files):
    """A sqlite store that is not there (MLflow would create it, folders and all) and a server
    that does not answer (MLflow's retries off, to fail at once)."""
    argv = ["predict", "--model", f"models:/{NAME}@champion", "--input", str(pair_files[1])]
    absent = f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", absent)
    line = run_error(capsys, [*argv, "--out", str(tmp_path / "o.h5ad")])
    assert f"the model registry {absent} does not exist" in line and "--tracking-uri" in line, line
    assert not (tmp_path / "nowhere").exists()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    line = run_error(
        capsys, [*argv, "--out", str(tmp_path / "o.h5ad"), "--tracking-uri", "http://127.0.0.1:9"]
    )
    assert line.startswith(
        f"error: models:/{NAME}@champion: cannot read the model registry http://127.0.0.1:9"
    )


def test_model_help_names_both_forms(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a model folder written by `ssda fit`, or a models:/ URI" in text and "--tracking-uri" in text
