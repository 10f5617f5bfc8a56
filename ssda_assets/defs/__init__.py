"""One sub-package per domain (gdsc, single_cell, training, analysis), loaded by `definitions.py`."""
