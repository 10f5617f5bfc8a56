"""Output locations (ssda_model.outputs): a user's folder is never replaced, the location is checked
before any data is read or trained on, and concurrent or killed writers never lose an output."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import pytest

from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.model import SSDAModel
from ssda_model.outputs import MARKER, replace_folder
from tests.helpers import bench_args, digests, fit_args, run_error


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder of the user's: files ssda did not write, one of them in a subfolder."""
    folder = tmp_path / "my_results"
    (folder / "notes").mkdir(parents=True)
    (folder / "thesis.tex").write_text("months of work\n")
    (folder / "notes" / "ideas.txt").write_text("do not delete\n")
    return folder


def test_benchmark_refuses_a_folder_of_the_users(capsys, pair_files, user_folder):
    before = digests(user_folder)
    line = run_error(capsys, bench_args(*pair_files, user_folder))
    assert "my_results" in line and "did not write" in line
    assert digests(user_folder) == before


def test_benchmark_refuses_the_working_directory(capsys, monkeypatch, pair_files, user_folder):
    monkeypatch.chdir(user_folder)
    before = digests(user_folder)
    line = run_error(capsys, bench_args(*pair_files, "."))
    assert "my_results" in line and "did not write" in line
    assert digests(user_folder) == before


def test_benchmark_replaces_its_own_folder(tmp_path, capsys, pair_files):
    out = tmp_path / "bench"
    assert main(bench_args(*pair_files, out)) == 0
    assert (out / MARKER).is_file() and (out / "results.csv").is_file()
    assert main(bench_args(*pair_files, out)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]


def _file_in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "model").write_text("a file of the user's\n")
    return tmp_path / "model"


@pytest.mark.parametrize("bad_out", ["user_folder", "file_in_the_way", "file_as_parent"])
def test_fit_checks_the_output_before_reading_or_training(tmp_path, capsys, pair_files, user_folder, bad_out):
    """A 50-epoch fit into a bad --out is refused in seconds; with a missing source file the output is
    still what is reported, so no data were read before the check."""
    out = {
        "user_folder": lambda: user_folder,
        "file_in_the_way": lambda: _file_in_the_way(tmp_path),
        "file_as_parent": lambda: _file_in_the_way(tmp_path) / "inner",
    }[bad_out]()
    before = digests(tmp_path)
    started = time.perf_counter()
    line = run_error(
        capsys,
        [
            "fit",
            "--source",
            str(pair_files[0]),
            "--target",
            str(pair_files[1]),
            "--out",
            str(out),
            "--epochs",
            "50",
            "--repetitions",
            "5",
            "--quiet",
        ],
    )
    assert time.perf_counter() - started < 3
    assert str(out.name) in line
    assert out.name in run_error(capsys, fit_args(tmp_path / "missing.h5ad", pair_files[1], out))
    assert digests(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_fit_into_a_read_only_parent_is_refused_before_training(tmp_path, capsys, pair_files):
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o500)
    line = run_error(capsys, fit_args(tmp_path / "missing.h5ad", pair_files[1], parent / "model"))
    assert "cannot write here" in line


def test_predict_refuses_a_folder_as_output_before_loading(tmp_path, capsys, pair_files, user_folder):
    before = digests(user_folder)
    line = run_error(
        capsys,
        [
            "predict",
            "--model",
            str(tmp_path / "no_model"),
            "--input",
            str(pair_files[1]),
            "--out",
            str(user_folder),
        ],
    )
    assert "my_results" in line and "is a folder" in line
    assert digests(user_folder) == before


def test_a_writer_killed_between_its_renames_gets_the_old_output_back(
    tmp_path, capsys, pair_files, small_pair
):
    """The state a kill between the two renames leaves: the old model retired into the staging
    folder, the new one next to it, the output missing. The next fit, even a failing one, restores it."""
    out = tmp_path / "model"
    assert main(fit_args(*pair_files, out)) == 0
    old = digests(out)
    staging = tmp_path / ".model.ssda-staging-killed"
    staging.mkdir()
    shutil.copytree(out, staging / "model")
    os.replace(out, staging / "retired")
    bad = small_pair[1][:, :10].copy()  # too few genes: this fit fails after the output check
    bad.write_h5ad(tmp_path / "bad.h5ad")
    run_error(capsys, fit_args(pair_files[0], tmp_path / "bad.h5ad", out))
    assert digests(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5ad", "model"]


def test_replace_folder_keeps_the_old_output_when_the_write_fails(tmp_path):
    out = replace_folder(tmp_path / "out", lambda tmp: tmp.mkdir())
    (out / "kept.txt").write_text("old\n")

    def failing(tmp: Path) -> None:
        tmp.mkdir()
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        replace_folder(out, failing)
    assert (out / "kept.txt").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_concurrent_predicts_and_fits_into_one_output(tmp_path, pair_files, small_pair):
    """Two `ssda predict` and two `ssda fit` at once into one output each: every run succeeds (the
    last writer wins) and both outputs are complete and loadable, with no temporary left behind."""
    model_dir = tmp_path / "model"
    assert main(fit_args(*pair_files, model_dir)) == 0
    cells = ad.concat([small_pair[1]] * 20, index_unique="-")  # 3,000 cells in 600 chunks: the runs overlap
    cells.write_h5ad(tmp_path / "cells.h5ad")
    command = [sys.executable, "-m", "ssda_model"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    predict = [
        *command,
        "predict",
        "--model",
        str(model_dir),
        "--input",
        str(tmp_path / "cells.h5ad"),
        "--out",
        str(tmp_path / "scored.h5ad"),
        "--chunk-size",
        "5",
    ]
    runs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in (
            predict,
            predict,
            [*command, *fit_args(*pair_files, tmp_path / "refit")],
            [*command, *fit_args(*pair_files, tmp_path / "refit", "--method", "source_only")],
        )
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    scored = ad.read_h5ad(tmp_path / "scored.h5ad")
    assert (
        scored.n_obs == 3000
        and scored.obs["ssda_score"].notna().all()
        and scored.obsm["X_ssda"].shape == (3000, 32)
    )
    assert SSDAModel.load(tmp_path / "refit").metrics["method"] in (SSDAConfig().method, "source_only")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad", "model", "refit", "scored.h5ad"]


def test_a_model_folder_saved_before_the_marker_is_still_replaced(tmp_path, pair_files):
    out = tmp_path / "model"
    assert main(fit_args(*pair_files, out)) == 0
    (out / MARKER).unlink()  # as `ssda fit` wrote it before markers existed
    assert main(fit_args(*pair_files, out, "--method", "source_only")) == 0
    assert SSDAModel.load(out).metrics["method"] == "source_only" and (out / MARKER).is_file()
