"""The benchmark: every method on the same splits and shots, paired statistics, files and plots."""

import pandas as pd
import pytest

from ssda_model.benchmark import ALL_METHODS, run_benchmark, summarize
from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel
from tests.helpers import bench_args


@pytest.fixture(scope="module")
def results():
    source, target = synthetic_pair(seed=0)
    config = SSDAConfig(epochs=15, encoder_dims=(256, 128, 64))
    return (
        source,
        target,
        config,
        run_benchmark(source, target, methods=list(ALL_METHODS), shots=[3], repetitions=2, config=config),
    )


@pytest.mark.slow
def test_every_method_beats_chance_and_adaptation_beats_source_only(results):
    *_, table = results
    mean_auc = table.groupby("method")["auc"].mean()
    assert set(mean_auc.index) == set(ALL_METHODS)
    assert (mean_auc > 0.6).all(), mean_auc.to_dict()
    for method in ("ssda", "ssda_prior", "ssda_no_adv", "ssda_no_mme"):
        assert mean_auc[method] > mean_auc["source_only"], mean_auc.to_dict()


def test_methods_are_paired_on_the_same_split(results):
    source, target, config, table = results
    assert table.groupby(["shots", "repetition"])["n_eval"].nunique().eq(1).all()
    alone = SSDAModel.fit(source, target, config.replace(repetitions=2)).metrics["repetitions"]
    default = table[table["method"] == config.method].sort_values("repetition")
    assert default["auc"].tolist() == [r["auc"] for r in alone]  # same split, shots and seed as a plain fit
    assert table["method"].tolist()[: len(ALL_METHODS)] == list(
        ALL_METHODS
    )  # rows by repetition, then method
    assert table["repetition"].is_monotonic_increasing


def test_summary_has_paired_wilcoxon_against_ssda(results):
    *_, table = results
    summary = summarize(table)
    assert list(summary.columns) == [
        "method",
        "shots",
        "mean_auc",
        "std_auc",
        "median_auc",
        "mean_aupr",
        "std_aupr",
        "median_aupr",
        "repetitions",
        "wilcoxon_p_vs_ssda",
    ]
    assert summary.loc[summary["method"] == "ssda", "wilcoxon_p_vs_ssda"].isna().all()
    assert summary["repetitions"].eq(2).all()


def test_benchmark_command_writes_results_summary_and_plots(tmp_path, pair_files, capsys):
    source, target = pair_files
    out = tmp_path / "bench"
    assert main(bench_args(source, target, out, "ssda,source_only,scad", "1,3", repetitions=2)) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == [
        "method",
        "shots",
        "repetition",
        "seed",
        "auc",
        "aupr",
        "protocol",
        "n_eval",
    ]
    assert len(results) == 3 * 2 * 2 and set(results["shots"]) == {1, 3}
    assert len(pd.read_csv(out / "summary.csv")) == 6
    for plot in ("auc_boxplot.png", "aupr_boxplot.png", "fewshot_curves.png"):
        assert (out / plot).stat().st_size > 5000
    assert "mean_auc" in capsys.readouterr().out


def test_benchmark_rejects_unknown_methods(tmp_path, pair_files, capsys):
    assert (
        main(
            [
                "benchmark",
                "--source",
                str(pair_files[0]),
                "--target",
                str(pair_files[1]),
                "--out",
                str(tmp_path / "b"),
                "--methods",
                "ssda,magic",
            ]
        )
        == 2
    )
    assert "unknown methods magic" in capsys.readouterr().err
