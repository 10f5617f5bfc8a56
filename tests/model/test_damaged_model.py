"""A damaged model folder (SSDAModel.load, used by `ssda predict` and the platform) is one line naming
the folder, the file and the problem, never a traceback, and never advice to unpickle it anyway."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from ssda_model.cli import main
from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel
from tests.helpers import digests, fit_args, run_error


class Payload:
    """A Python object that weights_only refuses to unpickle."""


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def drop_key(file: Path, key: str) -> None:
    data = json.loads(file.read_text())
    del data[key]
    file.write_text(json.dumps(data))


DAMAGE = {
    "truncated weights": (
        "weights/repetition_02.pt",
        lambda m: truncate(m / "weights" / "repetition_02.pt"),
        "truncated",
    ),
    "missing weights": (
        "weights/repetition_01.pt",
        lambda m: (m / "weights" / "repetition_01.pt").unlink(),
        "file missing",
    ),
    "model.json without n_models": (
        "model.json",
        lambda m: drop_key(m / "model.json", "n_models"),
        "n_models",
    ),
    "genes.txt not matching": ("genes.txt", lambda m: (m / "genes.txt").write_text("TP53\nEGFR\n"), "genes"),
    "genes.txt of the wrong genes": (
        "scaler.pt",
        lambda m: (
            (m / "genes.txt").write_text("\n".join(f"G{i}" for i in range(12)) + "\n"),
            drop_key(m / "model.json", "n_genes"),
        ),
        "12 genes",
    ),
    "empty scaler.pt": ("scaler.pt", lambda m: (m / "scaler.pt").write_bytes(b""), "truncated"),
    "pickle weights_only refuses": (
        "scaler.pt",
        lambda m: torch.save({"source_mean": Payload()}, m / "scaler.pt"),
        "Python objects",
    ),
    "config.json not JSON": ("config.json", lambda m: (m / "config.json").write_text("{"), "not valid JSON"),
    "config.json with a bad value": (
        "config.json",
        lambda m: (m / "config.json").write_text('{"epochs": 0}'),
        "epochs must be >= 1",
    ),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, pair_files) -> Path:
    out = tmp_path_factory.mktemp("fitted") / "model"
    assert main(fit_args(*pair_files, out)) == 0
    return out


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_model_folder_is_one_line(tmp_path, capsys, fitted, pair_files, damage):
    file, harm, problem = DAMAGE[damage]
    model = tmp_path / "model"
    shutil.copytree(fitted, model)
    harm(model)
    before = digests(tmp_path)
    line = run_error(
        capsys,
        [
            "predict",
            "--model",
            str(model),
            "--input",
            str(pair_files[1]),
            "--out",
            str(tmp_path / "scored.h5ad"),
        ],
    )
    assert f"model/{file}:" in line and f"model folder {model} is damaged" in line and problem in line, line
    assert line.count("is damaged") == 1
    assert "weights_only=False" not in line and "weights_only" not in line
    assert digests(tmp_path) == before  # nothing written, the damaged folder left as it was for inspection
    with pytest.raises(SSDAInputError, match="is damaged"):
        SSDAModel.load(model)


def test_an_intact_folder_still_loads(fitted, small_pair):
    model = SSDAModel.load(fitted)
    assert model.predict(small_pair[1][:5]).obs["ssda_score"].between(0, 1).all()
