"""Matching the drug names of manifests to GDSC's DRUG_NAME, with an alias table users can extend."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from ssda_model.data.gdsc import normalise_drug_name
from ssda_model.errors import SSDAInputError

ALIAS_FILE = "drug_aliases.yaml"
# Brand names and code names seen in the single-cell literature → GDSC's DRUG_NAME.
BUILTIN_ALIASES = {
    "iressa": "Gefitinib",
    "zd1839": "Gefitinib",
    "tarceva": "Erlotinib",
    "velcade": "Bortezomib",
    "ps341": "Bortezomib",
    "saha": "Vorinostat",
    "zolinza": "Vorinostat",
    "nexavar": "Sorafenib",
    "vp16": "Etoposide",
    "taxotere": "Docetaxel",
    "cddp": "Cisplatin",
    "plx4720": "PLX-4720",
}


def aliases(raw_dir: Path) -> dict[str, str]:
    """Built-in aliases overlaid with `<raw>/drug_aliases.yaml` (alias: GDSC name), keys normalised."""
    table = {normalise_drug_name(k): v for k, v in BUILTIN_ALIASES.items()}
    path = raw_dir / ALIAS_FILE
    if path.exists():
        try:
            extra = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SSDAInputError(str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(extra, dict):
            raise SSDAInputError(str(path), "expected a mapping alias: GDSC drug name")
        table.update({normalise_drug_name(k): str(v) for k, v in extra.items()})
    return table


def drug_key(name: str, raw_dir: Path) -> str:
    """The partition key of a drug: its GDSC name (through the aliases) normalised."""
    key = normalise_drug_name(name)
    return normalise_drug_name(aliases(raw_dir).get(key, name))


def match_gdsc_names(key: str, gdsc_names: list[str], where: str) -> list[str]:
    """The GDSC DRUG_NAMEs whose normalised form is `key`; none is an error naming the closest ones."""
    matches = [n for n in gdsc_names if normalise_drug_name(n) == key]
    if not matches:
        close = difflib.get_close_matches(
            key, sorted({normalise_drug_name(n) for n in gdsc_names}), n=5, cutoff=0.5
        )
        hint = f"; closest GDSC names: {', '.join(close)}" if close else ""
        raise SSDAInputError(
            where,
            f"drug {key!r} is not in the GDSC response table{hint}. "
            f"Add an alias in {ALIAS_FILE} if GDSC names it differently",
        )
    return matches
