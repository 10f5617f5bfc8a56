"""Sphinx configuration of the ssda4drug docs (MyST markdown, API reference from numpy docstrings).

Built by `make docs` (and by `make test`, hence CI) with warnings as errors: a broken cross-reference,
a missing page or an API entry for something that no longer exists fails the build. Nothing is
fetched from the internet (no intersphinx, no linkcheck).
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

project = "ssda4drug"
author = "ssda4drug contributors"
copyright = "2026, ssda4drug contributors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "bench_tables",  # docs/_ext/bench_tables.py: the results tables, generated from bench/results/
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve, and a missing anchor warns
nitpicky = False  # type hints name third-party classes (AnnData, torch) that have no inventory offline

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "furo"
html_title = "ssda4drug"
