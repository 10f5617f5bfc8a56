"""Shared fixtures (a small synthetic bulk / single-cell pair written as real .h5ad files) and the
fast tier: the `fast` marker that `make check` selects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssda_model.datasets import synthetic_pair
from ssda_model.threads import THREADS_ENV, available_cores

TESTS = Path(__file__).resolve().parent

# The fast tier (`make check` runs `-m fast`): the modules whose tests take under a second each,
# set-up included, on a busy 2-core machine (measured with --durations=0), less the tests named in
# NOT_FAST and those of the long tiers (the first training of a session adds a one-off second of
# warm-up, wherever it falls). A test added to one of these modules is fast by default: keep it so,
# or name it in NOT_FAST. Modules that build a platform or train more than a toy model
# (the asset tests, tests/model/test_method.py, test_ensemble.py…) run in `make test` only.
FAST_MODULES = (
    "test_docs.py",
    "test_import_cycles.py",
    "test_layering.py",
    "assets/test_dagster_private.py",
    "assets/test_definitions.py",
    "assets/test_fingerprint.py",
    "assets/test_input_options.py",
    "assets/test_links.py",
    "assets/test_manifest.py",
    "assets/test_team_registry_lock.py",
    "assets/test_train_config.py",
    "model/test_attribution.py",
    "model/test_bench_inputs.py",
    "model/test_cli.py",
    "model/test_cli_help.py",
    "model/test_damaged_model.py",
    "model/test_device.py",
    "model/test_drift.py",
    "model/test_networks.py",
    "model/test_outputs.py",
    "model/test_public_api.py",
    "model/test_readers.py",
    "model/test_sampling.py",
    "model/test_splits.py",
    "model/test_threads.py",
)
NOT_FAST = (
    "assets/test_definitions.py::test_dagster_cli_validates_the_definitions",  # a `dagster` process
    "assets/test_links.py::test_a_link_written_under_one_port_resolves_after_a_restart_on_another",
    "assets/test_team_registry_lock.py::test_two_registrations_at_once_take_turns_and_the_better_one_is_champion",
    "model/test_attribution.py::test_shap_values_equal_gradient_explainers_own_run",  # imports shap
    "model/test_bench_inputs.py::test_ours_runs_as_the_ssda_command_s_module_and_reports_its_phases",
    "model/test_cli.py::test_round_trip_through_the_installed_command",  # two `ssda` processes
    "model/test_cli.py::test_fit_prints_a_progress_bar_on_stderr",
    "model/test_cli.py::test_one_at_a_time_through_the_cli_gives_the_batched_metrics",
    "model/test_cli.py::test_refit_replaces_a_model_whole_and_failure_keeps_it",
    "model/test_outputs.py::test_concurrent_predicts_and_fits_into_one_output",
    "model/test_outputs.py::test_benchmark_replaces_its_own_folder",
)
LONG_TIERS = ("slow", "e2e", "team", "realdata", "gpu")


@pytest.fixture(scope="session")
def small_pair():
    return synthetic_pair(n_source=120, n_cells=150, n_genes=300, seed=1)


@pytest.fixture(scope="session")
def pair_files(tmp_path_factory, small_pair) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    source, target = small_pair
    source.write_h5ad(folder / "source.h5ad")
    target.write_h5ad(folder / "target.h5ad")
    return folder / "source.h5ad", folder / "target.h5ad"


@pytest.fixture(autouse=True)
def _one_thread_count_for_numerics(request, monkeypatch):
    """Tests that compare trained numbers train at one thread count: the core share lowers it while
    another ssda process trains, and kernels may split their sums by it (docs/numerics.md)."""
    if request.node.get_closest_marker("numerics"):
        monkeypatch.setenv(THREADS_ENV, str(available_cores()))


def pytest_collection_modifyitems(config, items):
    """Mark the fast tier (FAST_MODULES less NOT_FAST and the long tiers) `fast`."""
    for name in FAST_MODULES + NOT_FAST:  # a renamed module or test must not slip in or out unseen
        module, _, test = name.partition("::")
        if not (TESTS / module).exists() or (test and f"def {test}(" not in (TESTS / module).read_text()):
            raise pytest.UsageError(f"tests/conftest.py names {name}, which does not exist")
    for item in items:
        module = item.path.relative_to(TESTS).as_posix()
        if (
            module in FAST_MODULES
            and f"{module}::{item.originalname}" not in NOT_FAST
            and not any(item.get_closest_marker(tier) for tier in LONG_TIERS)
        ):
            item.add_marker(pytest.mark.fast)
