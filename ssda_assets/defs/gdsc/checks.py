"""Rows and unique keys of the GDSC tables (ssda_assets/storage/table_checks.py)."""

from ssda_assets.defs.gdsc.assets import gdsc_labels, gdsc_response
from ssda_assets.storage.table_checks import WARN, table_checks

# GDSC's own table: a repeated (screen, drug, line) is the publisher's, a quality signal
response_table = table_checks(
    gdsc_response, "gdsc_response", ("dataset", "drug_id", "cosmic_id"), duplicates=WARN
)
labels_table = table_checks(gdsc_labels, "gdsc_labels", ("drug", "cosmic_id"), dimension="drug")
