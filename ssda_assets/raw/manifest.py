"""`datasets/<name>/dataset.yaml`: what a single-cell dataset declares, validated all at once.

Every path it names (`matrix`, `obs`, `source`) is relative to the dataset's folder and must stay
inside it after symlinks are resolved, the files of a 10x matrix folder included: a manifest can
never make ingestion read a file elsewhere on the machine (`../..`, an absolute path, a link out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssda_model.data.gene_ids import ID_TYPES
from ssda_model.data.qc import QCThresholds
from ssda_model.errors import SSDAInputError

MANIFEST = "dataset.yaml"
DATASET_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
FORMATS = ("h5ad", "10x", "csv", "tsv", "scad")
TOP_KEYS = {
    "drugs",
    "matrix",
    "obs",
    "format",
    "orientation",
    "normalized",
    "layer",
    "qc",
    "gene_id",
    "species",
    "label",
    "time",
    "contrasts",
    "source",
    "description",
}
LABEL_KEYS = {"column", "sensitive", "resistant"}
TIME_KEYS = {"column", "order", "sensitive", "resistant"}
CONTRAST_KEYS = {"name", "a", "b"}
QC_KEYS = {"min_genes", "min_cells", "max_mito_pct", "integer_counts"}


@dataclass(frozen=True)
class LabelSpec:
    column: str
    sensitive: tuple[str, ...]
    resistant: tuple[str, ...]


@dataclass(frozen=True)
class TimeSpec:
    column: str
    order: tuple[str, ...]
    sensitive: tuple[str, ...] = ()
    resistant: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contrast:
    """Compare time point `a` with `b` (e.g. drug holiday D19DMSO vs re-treated D19ERL)."""

    name: str
    a: str
    b: str


@dataclass(frozen=True)
class Manifest:
    name: str
    folder: Path
    drugs: tuple[str, ...]
    matrix: Path
    format: str
    obs: Path | None = None  # per-cell metadata table (csv/tsv, first column = cell id)
    orientation: str | None = None
    normalized: bool = False
    layer: str | None = None  # where an .h5ad holds its raw counts: a layer's name, or ".raw"; X if None
    qc: QCThresholds = field(default_factory=QCThresholds)
    gene_id: str = "symbol"
    species: str = "human"
    label: LabelSpec | None = None
    time: TimeSpec | None = None
    contrasts: tuple[Contrast, ...] = field(default_factory=tuple)
    source: Path | None = None  # SCAD-format source table shipped with the dataset
    description: str = ""

    @property
    def labels_from_time(self) -> bool:
        return (
            self.label is None and self.time is not None and bool(self.time.sensitive or self.time.resistant)
        )


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    problems.append(f"{where} must be a value or a non-empty list of values, got {value!r}")
    return ()


def _mapping(value: Any, where: str, keys: set[str], problems: list[str]) -> dict:
    if not isinstance(value, dict):
        problems.append(f"{where} must be a mapping, got {type(value).__name__}")
        return {}
    unknown = sorted(set(value) - keys)
    if unknown:
        problems.append(f"{where} has unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(keys))})")
    return value


def _infer_format(matrix: Path) -> str | None:
    name = matrix.name.lower()
    if name.startswith("target_expr_resp_z"):
        return "scad"
    if name.endswith(".h5ad"):
        return "h5ad"
    if matrix.is_dir():
        return "10x"
    for suffix, fmt in (
        (".csv", "csv"),
        (".csv.gz", "csv"),
        (".tsv", "tsv"),
        (".tsv.gz", "tsv"),
        (".txt", "tsv"),
    ):
        if name.endswith(suffix):
            return fmt
    return None


def _confined(folder: Path, key: str, value: Any, problems: list[str]) -> Path:
    """`folder / value`, with a problem noted unless it exists inside `folder` once symlinks are resolved."""
    path, root = folder / str(value), folder.resolve()
    outside = f"'{key}' {value!r} leads outside the dataset folder {folder}"
    if Path(str(value)).is_absolute():
        problems.append(
            f"'{key}' {value!r} is an absolute path; paths are relative to the dataset folder {folder}"
        )
    elif not path.resolve().is_relative_to(root):
        problems.append(
            f"{outside} (through '..' or a symbolic link); every file a dataset uses must be inside it"
        )
    elif not path.exists():
        problems.append(f"'{key}' {value!r} does not exist in {folder}")
    elif path.is_dir() and any(not p.resolve().is_relative_to(root) for p in path.rglob("*")):
        problems.append(
            f"{outside}: a file in it is a symbolic link out; every file a dataset uses must be inside it"
        )
    return path


def _load(folder: Path) -> tuple[Path, Any]:
    """The manifest's path and its YAML, or an error for a bad folder name, no file or bad YAML."""
    path = folder / MANIFEST
    if not DATASET_NAME.match(folder.name):
        raise SSDAInputError(
            str(folder), "dataset folder names may only use letters, digits, '.', '_' and '-'"
        )
    if not path.exists():
        raise SSDAInputError(str(path), "manifest not found")
    try:
        return path, yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SSDAInputError(str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None


def _choice(raw: dict, key: str, default: Any, allowed: tuple, problems: list[str]) -> Any:
    value = raw.get(key, default)
    if value not in allowed:
        choices = " or ".join(allowed) if len(allowed) == 2 else f"one of {', '.join(allowed)}"
        problems.append(f"'{key}' must be {choices}, got {value!r}")
    return value


def _layer(raw: dict, fmt: str | None, normalized: bool, problems: list[str]) -> str | None:
    """The `layer:` holding an .h5ad's raw counts (a layer's name, or .raw)."""
    layer = raw.get("layer")
    if layer is None:
        return None
    if not isinstance(layer, str) or not layer:
        problems.append(f"'layer' must be a layer's name or .raw, got {layer!r}")
    elif fmt != "h5ad" or normalized:
        problems.append("'layer' names where an .h5ad holds its raw counts (format h5ad, normalized: false)")
    return layer if isinstance(layer, str) else None


def _qc(raw: dict, normalized: bool, problems: list[str]) -> QCThresholds:
    """The `qc:` thresholds (the paper's where absent)."""
    if "qc" not in raw:
        return QCThresholds()
    spec = _mapping(raw["qc"], "'qc'", QC_KEYS, problems)
    if normalized:
        problems.append("'qc' applies to raw counts; this matrix is declared normalized")
    defaults = QCThresholds()
    values: dict[str, Any] = {}
    for key, kind, low, high in (
        ("min_genes", int, 0, None),
        ("min_cells", int, 0, None),
        ("max_mito_pct", (int, float), 0, 100),
    ):
        value = spec.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, kind) or value < low or (high and value > high):
            bound = f"between {low} and {high}" if high else f"a whole number ≥ {low}"
            problems.append(f"'qc.{key}' must be {bound}, got {value!r}")
        else:
            values[key] = value
    integer_counts = spec.get("integer_counts", True)
    if not isinstance(integer_counts, bool):
        problems.append(f"'qc.integer_counts' must be true or false, got {integer_counts!r}")
    else:
        values["integer_counts"] = integer_counts
    return QCThresholds(**values)


def _label(raw: dict, fmt: str | None, problems: list[str]) -> LabelSpec | None:
    """The `label:` section (a SCAD file's response column when absent)."""
    if "label" not in raw and fmt != "scad":
        return None
    spec = _mapping(
        raw.get("label", {"column": "response", "sensitive": [1], "resistant": [0]}),
        "'label'",
        LABEL_KEYS,
        problems,
    )
    missing = sorted(LABEL_KEYS - set(spec))
    if missing:
        problems.append(f"'label' needs {', '.join(missing)}")
        return None
    label = LabelSpec(
        str(spec["column"]),
        _strings(spec["sensitive"], "'label.sensitive'", problems),
        _strings(spec["resistant"], "'label.resistant'", problems),
    )
    if set(label.sensitive) & set(label.resistant):
        problems.append("'label.sensitive' and 'label.resistant' share values")
    return label


def _time(raw: dict, label: LabelSpec | None, problems: list[str]) -> TimeSpec | None:
    """The `time:` section: the column, the order of the points, and labels taken from points."""
    if "time" not in raw:
        return None
    spec = _mapping(raw["time"], "'time'", TIME_KEYS, problems)
    if "column" not in spec or "order" not in spec:
        problems.append("'time' needs column and order")
        return None
    order = _strings(spec["order"], "'time.order'", problems)
    sensitive = _strings(spec["sensitive"], "'time.sensitive'", problems) if "sensitive" in spec else ()
    resistant = _strings(spec["resistant"], "'time.resistant'", problems) if "resistant" in spec else ()
    unknown = sorted(set(sensitive + resistant) - set(order))
    if unknown:
        problems.append(
            f"'time.sensitive'/'time.resistant' name time points not in 'time.order': {', '.join(unknown)}"
        )
    if set(sensitive) & set(resistant):
        problems.append("'time.sensitive' and 'time.resistant' share time points")
    if label is not None and (sensitive or resistant):
        problems.append("labels come either from 'label' or from 'time.sensitive'/'time.resistant', not both")
    return TimeSpec(str(spec["column"]), order, sensitive, resistant)


def _contrasts(raw: dict, time: TimeSpec | None, problems: list[str]) -> tuple[Contrast, ...]:
    contrasts = []
    for i, item in enumerate(raw.get("contrasts") or []):
        spec = _mapping(item, f"'contrasts[{i}]'", CONTRAST_KEYS, problems)
        if set(spec) != CONTRAST_KEYS:
            problems.append(f"'contrasts[{i}]' needs name, a and b")
        elif time is None or not {str(spec["a"]), str(spec["b"])} <= set(time.order):
            problems.append(f"'contrasts[{i}]' compares time points that 'time.order' does not list")
        else:
            contrasts.append(Contrast(str(spec["name"]), str(spec["a"]), str(spec["b"])))
    return tuple(contrasts)


def read_manifest(folder: str | Path) -> Manifest:
    """Parse and validate a dataset folder's manifest; every problem is reported in one error."""
    folder = Path(folder)
    path, loaded = _load(folder)
    problems: list[str] = []
    raw = {k: v for k, v in _mapping(loaded, "the manifest", TOP_KEYS, problems).items() if v is not None}
    problems += [f"'{key}' is required" for key in ("drugs", "matrix") if key not in raw]
    drugs = _strings(raw["drugs"], "'drugs'", problems) if "drugs" in raw else ()
    matrix = _confined(folder, "matrix", raw["matrix"], problems) if "matrix" in raw else folder
    fmt = raw.get("format") or (_infer_format(matrix) if "matrix" in raw else None)
    if "matrix" in raw and fmt not in FORMATS:
        problems.append(f"'format' must be one of {', '.join(FORMATS)}, got {fmt!r}")
    orientation = raw.get("orientation")
    if fmt in ("csv", "tsv") and orientation not in ("cells_by_genes", "genes_by_cells"):
        problems.append("'orientation' must be cells_by_genes or genes_by_cells for a csv/tsv matrix")
    normalized = raw.get("normalized", fmt == "scad")
    if not isinstance(normalized, bool):
        problems.append(f"'normalized' must be true or false, got {normalized!r}")
    layer = _layer(raw, fmt, normalized is True, problems)
    qc = _qc(raw, normalized is True, problems)
    gene_id = _choice(raw, "gene_id", "entrez" if fmt == "scad" else "symbol", ID_TYPES, problems)
    species = _choice(raw, "species", "human", ("human", "mouse"), problems)
    label = _label(raw, fmt, problems)
    time = _time(raw, label, problems)
    contrasts = _contrasts(raw, time, problems)
    obs = _confined(folder, "obs", raw["obs"], problems) if raw.get("obs") else None
    source = _confined(folder, "source", raw["source"], problems) if raw.get("source") else None
    if problems:
        raise SSDAInputError(str(path), "; ".join(problems))
    return Manifest(
        name=folder.name,
        folder=folder,
        drugs=drugs,
        matrix=matrix,
        format=fmt,
        obs=obs,
        orientation=orientation,
        normalized=normalized,
        layer=layer,
        qc=qc,
        gene_id=gene_id,
        species=species,
        label=label,
        time=time,
        contrasts=contrasts,
        source=source,
        description=str(raw.get("description", "")),
    )


def dataset_folders(raw_dir: str | Path) -> list[Path]:
    """Every folder under `<raw>/datasets/` (valid or not), in name order."""
    root = Path(raw_dir) / "datasets"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
