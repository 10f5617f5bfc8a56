"""Rows and unique keys of the method comparison (ssda_assets/storage/table_checks.py)."""

from ssda_assets.defs.benchmark.assets import benchmark
from ssda_assets.storage.table_checks import table_checks

results_table = table_checks(
    benchmark, "benchmark_results", ("drug", "dataset", "method", "shots", "repetition")
)
