"""Rows and unique keys of the per-drug cell table (ssda_assets/storage/table_checks.py)."""

from ssda_assets.defs.single_cell.assets import target_dataset
from ssda_assets.storage.table_checks import table_checks

target_table = table_checks(target_dataset, "target_dataset", ("drug", "dataset", "cell_id"))
