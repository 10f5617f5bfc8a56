"""The `ssda` command contract: round trip, metrics.json shape, one-line errors with exit code 2."""

import json
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest
import torch

from ssda_model.cli import main
from ssda_model.train.protocol import FitMetrics, RepetitionMetrics
from tests.helpers import fit_args, run_error


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, pair_files) -> Path:
    out = tmp_path_factory.mktemp("fitted") / "model"
    assert main(fit_args(*pair_files, out)) == 0
    return out


def write(adata: ad.AnnData, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


def test_round_trip_through_the_installed_command(tmp_path, pair_files, small_pair):
    """fit then predict on new cells without labels, as a user runs it."""
    source, target = pair_files
    model_dir = tmp_path / "model"
    fit = subprocess.run(
        [sys.executable, "-m", "ssda_model", *fit_args(source, target, model_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "mean" in fit.stdout and "AUC" in fit.stdout and "bulk_weight" in fit.stdout  # ssda_auto's choice
    assert "AUC ssda_auto" in fit.stdout and "AUC target_only" in fit.stdout  # each blend member alone
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics) == FitMetrics.__required_keys__  # every key the type declares, no other
    assert set(metrics["repetitions"][0]) == RepetitionMetrics.__required_keys__
    assert metrics["protocol"] == "paper" and metrics["shots"] == 3 and len(metrics["repetitions"]) == 2
    assert metrics["method"] == "ssda_blend"  # the default
    assert set(metrics["mean_member_auc"]) == {"ssda_auto", "target_only"}

    new_cells = small_pair[1][:40].copy()
    del new_cells.obs["response"]
    new_path = write(new_cells, tmp_path / "new.h5ad")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ssda_model",
            "predict",
            "--model",
            str(model_dir),
            "--input",
            str(new_path),
            "--out",
            str(tmp_path / "scored.h5ad"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    scored = ad.read_h5ad(tmp_path / "scored.h5ad")
    assert scored.obs["ssda_score"].between(0, 1).all() and (scored.obs["ssda_score_std"] >= 0).all()
    expected = np.where(scored.obs["ssda_score"] >= 0.5, "sensitive", "resistant")
    assert (scored.obs["ssda_label"].astype(str).to_numpy() == expected).all()
    assert scored.obsm["X_ssda"].shape == (40, 32)
    assert scored.uns["ssda"]["model"] == str(model_dir.resolve())
    assert len(scored.uns["ssda"]["genes_used"]) == metrics["n_genes"]


def test_fit_prints_a_progress_bar_on_stderr(tmp_path, pair_files, capsys):
    assert main(fit_args(*pair_files, tmp_path / "m")[:-1]) == 0  # without --quiet
    captured = capsys.readouterr()
    assert "epoch" in captured.err and "best_epoch" in captured.out


def test_fit_says_where_its_time_went(tmp_path, pair_files, capsys):
    """The last line splits the run into its phases (bench/training.py reads it)."""
    assert main(fit_args(*pair_files, tmp_path / "m")) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"took ([\d.]+) s: (.*)", last)
    assert match, last
    phases = dict(re.findall(r"([a-z-]+) ([\d.]+) s", match.group(2)))
    assert list(phases) == ["start-up", "read", "prepare", "train", "score", "save"]
    assert float(phases["train"]) > 0 and float(phases["start-up"]) > 0
    assert sum(map(float, phases.values())) == pytest.approx(float(match.group(1)), abs=0.1)


def test_shots_all_and_strict_through_the_cli(tmp_path, pair_files):
    assert main(fit_args(*pair_files, tmp_path / "m", "--shots", "all", "--protocol", "strict")) == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["shots"] == "all" and metrics["evaluation"] == "source_validation"
    assert set(metrics) == FitMetrics.__required_keys__ | FitMetrics.__optional_keys__  # with its note


@pytest.mark.numerics
def test_one_at_a_time_through_the_cli_gives_the_batched_metrics(tmp_path, pair_files):
    """Exact in fp32, where the CPU's batched and single matmuls round alike by construction; under
    `auto` (bf16 with bf16 units) the members train alike: tests/model/test_ensemble.py. So does
    the shots-alone network of the default blend (its 6-row batches), hence `ssda_auto` here."""
    runs = {}
    for mode in ("--batch-repetitions", "--no-batch-repetitions"):
        args = fit_args(*pair_files, tmp_path / mode, "--precision", "fp32", "--method", "ssda_auto", mode)
        assert main(args) == 0
        config = json.loads((tmp_path / mode / "config.json").read_text())
        assert config["batch_repetitions"] is (mode == "--batch-repetitions")
        metrics = json.loads((tmp_path / mode / "metrics.json").read_text())
        runs[mode] = [r["auc"] for r in metrics["repetitions"]]
    assert runs["--no-batch-repetitions"] == pytest.approx(runs["--batch-repetitions"], abs=1e-6)


def test_missing_file(tmp_path, pair_files, capsys):
    line = run_error(capsys, fit_args(tmp_path / "nope.h5ad", pair_files[1], tmp_path / "m"))
    assert "nope.h5ad" in line and "not found" in line
    assert not (tmp_path / "m").exists()


def test_unreadable_file(tmp_path, pair_files, capsys):
    bad = tmp_path / "garbage.h5ad"
    bad.write_bytes(b"this is not hdf5")
    line = run_error(capsys, fit_args(bad, pair_files[1], tmp_path / "m"))
    assert "garbage.h5ad" in line and "AnnData" in line


def test_hdf5_that_is_not_anndata(tmp_path, pair_files, capsys):
    bad = tmp_path / "other.h5ad"
    with h5py.File(bad, "w") as handle:
        handle["numbers"] = np.arange(5)
    line = run_error(capsys, fit_args(bad, pair_files[1], tmp_path / "m"))
    assert "other.h5ad" in line and "AnnData" in line


def test_label_key_absent(tmp_path, pair_files, capsys):
    line = run_error(capsys, fit_args(*pair_files, tmp_path / "m", "--label-key", "ic50_class"))
    assert "source.h5ad" in line and "'ic50_class'" in line


def test_labels_other_than_binary(tmp_path, pair_files, small_pair, capsys):
    source = small_pair[0].copy()
    source.obs["response"] = source.obs["response"].astype(str).replace({"1": "2"})
    path = write(source, tmp_path / "s.h5ad")
    line = run_error(capsys, fit_args(path, pair_files[1], tmp_path / "m"))
    assert "s.h5ad" in line and "values other than 1" in line and ": 2" in line


def test_single_class_source(tmp_path, pair_files, small_pair, capsys):
    source = small_pair[0].copy()
    source.obs["response"] = 1
    path = write(source, tmp_path / "s.h5ad")
    line = run_error(capsys, fit_args(path, pair_files[1], tmp_path / "m"))
    assert "s.h5ad" in line and "only sensitive (1)" in line


def test_too_few_labeled_target_cells_for_the_shots(tmp_path, pair_files, small_pair, capsys):
    target = small_pair[1].copy()
    labels = target.obs["response"].astype(float).to_numpy()
    resistant = np.flatnonzero(labels == 0)
    labels[resistant[4:]] = np.nan  # keep 4 resistant labels: 3 after validation hold-out
    target.obs["response"] = labels
    path = write(target, tmp_path / "t.h5ad")
    line = run_error(capsys, fit_args(pair_files[0], path, tmp_path / "m", "--shots", "5"))
    assert "t.h5ad" in line and "--shots 5" in line and "4 resistant (0)" in line


def test_too_few_shared_genes(tmp_path, pair_files, small_pair, capsys):
    target = small_pair[1][:, :40].copy()
    path = write(target, tmp_path / "t.h5ad")
    line = run_error(capsys, fit_args(pair_files[0], path, tmp_path / "m"))
    assert "only 40 genes are shared" in line and "t.h5ad" in line


def test_non_finite_values(tmp_path, pair_files, small_pair, capsys):
    target = small_pair[1].copy()
    target.X[3, 7] = np.inf
    path = write(target, tmp_path / "t.h5ad")
    line = run_error(capsys, fit_args(pair_files[0], path, tmp_path / "m"))
    assert "t.h5ad" in line and "NaN or infinite" in line and "cell00003" in line


def test_negative_values_only_warn(tmp_path, pair_files, small_pair, capsys):
    target = small_pair[1].copy()
    target.X[0, 0] = -1.0
    path = write(target, tmp_path / "t.h5ad")
    assert main(fit_args(pair_files[0], path, tmp_path / "m")) == 0
    err = capsys.readouterr().err
    assert any(
        line.startswith("warning: ") and "t.h5ad" in line and "negative" in line for line in err.splitlines()
    )


def test_predict_input_missing_most_genes(tmp_path, fitted, small_pair, capsys):
    cells = small_pair[1][:, 100:].copy()  # 200 of 300 genes
    cells.var_names = [f"X{g}" if i % 2 else g for i, g in enumerate(cells.var_names)]
    path = write(cells, tmp_path / "cells.h5ad")
    line = run_error(
        capsys, ["predict", "--model", str(fitted), "--input", str(path), "--out", str(tmp_path / "o.h5ad")]
    )
    assert "cells.h5ad" in line and "at least half" in line
    assert not (tmp_path / "o.h5ad").exists()


def test_predict_with_a_folder_that_is_not_a_model(tmp_path, pair_files, capsys):
    line = run_error(
        capsys,
        [
            "predict",
            "--model",
            str(tmp_path),
            "--input",
            str(pair_files[1]),
            "--out",
            str(tmp_path / "o.h5ad"),
        ],
    )
    assert "not an ssda model directory" in line


def test_unwritable_out(tmp_path, pair_files, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = run_error(capsys, fit_args(*pair_files, blocker / "model"))
    assert "a_file/model" in line and "cannot write" in line


def test_bad_arguments_are_one_line(tmp_path, pair_files, capsys):
    line = run_error(capsys, fit_args(*pair_files, tmp_path / "m", "--shots", "three"))
    assert "--shots" in line


def test_refit_replaces_a_model_whole_and_failure_keeps_it(tmp_path, pair_files, small_pair, capsys):
    out = tmp_path / "model"
    assert main(fit_args(*pair_files, out)) == 0
    before = (out / "metrics.json").read_text()
    bad = small_pair[1].copy()
    bad.X[0, 0] = np.nan
    run_error(capsys, fit_args(pair_files[0], write(bad, tmp_path / "bad.h5ad"), out))
    assert (out / "metrics.json").read_text() == before  # a failed fit leaves the old model intact
    assert main(fit_args(*pair_files, out, "--method", "source_only")) == 0
    assert json.loads((out / "metrics.json").read_text())["method"] == "source_only"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_device_that_is_not_there_is_bad_input(tmp_path, pair_files, capsys):
    source, target = pair_files
    for device, expected in (("cuda", "no CUDA device"), ("gpu0", "expected auto, cpu, cuda or cuda:N")):
        if device == "cuda" and torch.cuda.is_available():
            continue
        message = run_error(capsys, fit_args(source, target, tmp_path / device, "--device", device))
        assert message.startswith("error: device:") and expected in message


def test_a_bug_is_not_reported_as_bad_input(tmp_path, pair_files, monkeypatch):
    """Only SSDAInputError is the user's to fix; any other error keeps its traceback."""

    def broken(*args, **kwargs):
        raise ValueError("an internal mistake")

    monkeypatch.setattr("ssda_model.cli.SSDAModel.fit", broken)
    source, target = pair_files
    with pytest.raises(ValueError, match="an internal mistake"):
        main(fit_args(source, target, tmp_path / "model"))
