"""The embedded demo data: a deterministic raw zone in the official GDSC and single-cell formats.

`write_demo_raw(raw_dir)` writes, from one seed:
- `Cell_line_RMA_proc_basalExp.txt`: 300 lines × ~2,000 genes (log2 RMA-like), with MT- genes,
  empty and duplicated symbols;
- `GDSC2_fitted_dose_response_demo.csv`: LN_IC50 / AUC of four drugs, driven by a hidden
  per-drug response program (20 genes each);
- `datasets/`: a labelled benchmark line (10x + cell table), a four-point resistance time course
  (h5ad) and a drug-holiday course (h5ad), each with low-quality cells and rare genes that QC removes;
- `demo_truth.json`: the planted programs and the exact QC removals, for the tests.
Run as `python -m ssda_assets.raw.demo_raw DIR`.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from scipy import io, sparse

N_LINES, N_GENES, PROGRAM_SIZE = 300, 2000, 20
DRUGS = {"Gefitinib": 1010, "Bortezomib": 104, "Erlotinib": 1, "PLX-4720": 1036}
MT_GENES = [f"MT-{name}" for name in ("CO1", "CO2", "CO3", "ND1", "ND2", "ND4", "ND5", "CYB", "ATP6")]
TISSUES = ["lung_NSCLC", "breast", "skin_melanoma", "HNSC", "colon", "haematopoietic"]
LOW_GENE_CELLS, HIGH_MITO_CELLS, RARE_GENES = 6, 5, 8


def _genes(rng: np.random.Generator) -> tuple[list[str], dict[str, list[str]]]:
    names = [f"GENE{i:04d}" for i in range(N_GENES - len(MT_GENES))] + MT_GENES
    order = rng.permutation(N_GENES - len(MT_GENES))
    programs = {
        drug: [names[i] for i in order[k * PROGRAM_SIZE : (k + 1) * PROGRAM_SIZE]]
        for k, drug in enumerate(DRUGS)
    }
    return names, programs


def _bulk(rng, genes, programs, raw: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    base = rng.normal(7.0, 1.5, len(genes))
    tissue = rng.integers(0, len(TISSUES), N_LINES)
    lineage = rng.normal(0, 1.2, (len(TISSUES), len(genes))) * (rng.random((len(TISSUES), len(genes))) < 0.05)
    expression = base + lineage[tissue] + rng.normal(0, 0.4, (N_LINES, len(genes)))
    position = {g: i for i, g in enumerate(genes)}
    sensitivity = {}
    for drug, program in programs.items():
        z = rng.normal(0, 1, N_LINES)
        sensitivity[drug] = z
        columns = [position[g] for g in program]
        expression[:, columns] += 0.9 * z[:, None] * np.where(np.arange(len(columns)) % 2, 1, -1)
    cosmic = np.arange(N_LINES) + 900001
    table = pd.DataFrame(expression.T.round(4), columns=[f"DATA.{c}" for c in cosmic])
    table.insert(0, "GENE_title", [f"{g} demo gene" for g in genes])
    table.insert(0, "GENE_SYMBOLS", genes)
    extra = table.iloc[:8].copy()
    extra.iloc[:5, 0] = ""  # probes without a symbol
    extra.iloc[5:, 0] = table.iloc[100:103, 0].to_numpy()  # symbols measured by two probes
    extra.iloc[:, 2:] += 0.1
    pd.concat([table, extra]).to_csv(raw / "Cell_line_RMA_proc_basalExp.txt", sep="\t", index=False)
    lines = pd.DataFrame(
        {
            "cosmic_id": cosmic,
            "cell_line": [f"DEMO-{i:03d}" for i in range(N_LINES)],
            "tissue": [TISSUES[t] for t in tissue],
        }
    )
    return lines, sensitivity


def _response(rng, lines: pd.DataFrame, sensitivity: dict[str, np.ndarray], raw: Path) -> None:
    rows = []
    for drug, drug_id in DRUGS.items():
        tested = rng.random(N_LINES) < 0.92  # not every line is screened with every drug
        ln_ic50 = 1.5 - 1.6 * sensitivity[drug] + rng.normal(0, 0.5, N_LINES)
        for i in np.flatnonzero(tested):
            rows.append(
                {
                    "DATASET": "GDSC2",
                    "NLME_RESULT_ID": 343,
                    "COSMIC_ID": lines.cosmic_id[i],
                    "CELL_LINE_NAME": lines.cell_line[i],
                    "SANGER_MODEL_ID": f"SIDM{i:05d}",
                    "TCGA_DESC": lines.tissue[i],
                    "DRUG_ID": drug_id,
                    "DRUG_NAME": drug,
                    "PUTATIVE_TARGET": "demo",
                    "PATHWAY_NAME": "demo",
                    "COMPANY_ID": 1045,
                    "WEBRELEASE": "Y",
                    "MIN_CONC": 0.001,
                    "MAX_CONC": 10.0,
                    "LN_IC50": round(float(ln_ic50[i]), 5),
                    "AUC": round(float(1 / (1 + np.exp(-ln_ic50[i]))), 5),
                    "RMSE": 0.05,
                    "Z_SCORE": 0.0,
                }
            )
    pd.DataFrame(rows).to_csv(raw / "GDSC2_fitted_dose_response_demo.csv", index=False)


def _cells(rng, genes, program, resistant: np.ndarray) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """Counts of one cell line: the drug's program moves with the cell state (sensitive = +z in bulk)."""
    n = len(resistant)
    position = {g: i for i, g in enumerate(genes)}
    mt = np.array([g.startswith("MT-") for g in genes])
    log_rate = rng.normal(0.0, 0.8, len(genes)) + rng.normal(0, 0.25, (n, len(genes)))
    state = np.where(resistant, -1.0, 1.0) + rng.normal(0, 0.35, n)
    columns = [position[g] for g in program]
    log_rate[:, columns] += 0.9 * state[:, None] * np.where(np.arange(len(columns)) % 2, 1, -1)
    log_rate[:, mt] += np.log(0.02 * len(genes) / mt.sum())  # about 2 % mitochondrial counts
    rate = np.exp(log_rate)
    library = rng.lognormal(np.log(5000), 0.3, n)
    low_gene = np.arange(LOW_GENE_CELLS)  # first cells: almost empty droplets
    high_mito = np.arange(LOW_GENE_CELLS, LOW_GENE_CELLS + HIGH_MITO_CELLS)
    library[low_gene] = 90
    rate[np.ix_(high_mito, np.flatnonzero(mt))] *= 12  # about 20 % mitochondrial counts
    rate = rate / rate.sum(axis=1, keepdims=True) * library[:, None]
    counts = rng.poisson(rate)
    rare = rng.choice(
        np.flatnonzero(~mt & ~np.isin(np.arange(len(genes)), columns)), RARE_GENES, replace=False
    )
    counts[:, rare] = 0
    counts[LOW_GENE_CELLS + HIGH_MITO_CELLS, rare] = 1  # each rare gene seen in one good cell only
    return sparse.csr_matrix(counts.astype(np.float32)), {"rare_genes": [genes[i] for i in rare]}


def _write_10x(folder: Path, counts: sparse.csr_matrix, genes: list[str], barcodes: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "matrix.mtx.gz", "wb") as handle:
        io.mmwrite(handle, counts.T.tocoo(), field="integer")
    features = pd.DataFrame(
        {"id": [f"ENSG_DEMO{i:05d}" for i in range(len(genes))], "name": genes, "type": "Gene Expression"}
    )
    features.to_csv(folder / "features.tsv.gz", sep="\t", header=False, index=False, compression="gzip")
    pd.Series(barcodes).to_csv(folder / "barcodes.tsv.gz", header=False, index=False, compression="gzip")


def _time_course(rng, genes, program, order, resistant_share, cells_per_point):
    time = np.repeat(order, cells_per_point)
    resistant = rng.random(len(time)) < np.repeat(resistant_share, cells_per_point)
    shuffle = rng.permutation(len(time))
    time, resistant = time[shuffle], resistant[shuffle]
    counts, extra = _cells(rng, genes, program, resistant)
    return counts, time, resistant, extra


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def _labelled_line(rng, raw: Path, genes, program) -> dict:
    """A labelled benchmark line, parental vs resistant, as a 10x folder with a cell table."""
    resistant = np.arange(300) % 2 == 1
    counts, extra = _cells(rng, genes, program, resistant)
    barcodes = [f"JHU{i:04d}-1" for i in range(300)]
    folder = raw / "datasets" / "jhu006_gefitinib"
    _write_10x(folder / "filtered_feature_bc_matrix", counts, genes, barcodes)
    pd.DataFrame({"barcode": barcodes, "condition": np.where(resistant, "resistant", "parental")}).to_csv(
        folder / "cells.csv", index=False
    )
    _write_manifest(
        folder,
        {
            "description": "Head-and-neck line, parental vs gefitinib-resistant (demo)",
            "drugs": ["Gefitinib"],
            "matrix": "filtered_feature_bc_matrix",
            "obs": "cells.csv",
            "gene_id": "symbol",
            "species": "human",
            "label": {"column": "condition", "sensitive": ["parental"], "resistant": ["resistant"]},
        },
    )
    return {"cells": 300, **extra}


def _time_course_dataset(rng, raw: Path, genes, program, name: str, course: dict) -> dict:
    """A time course as counts.h5ad, its time points in obs[`course["column"]`], each point holding
    `course["cells"]` cells of which the share `course["resistant"]` resist."""
    order, share = course["order"], course["resistant"]
    counts, time, _, extra = _time_course(rng, genes, program, order, share, course["cells"])
    folder = raw / "datasets" / name
    folder.mkdir(parents=True, exist_ok=True)
    ad.AnnData(
        X=counts,
        obs=pd.DataFrame(
            {course["column"]: time}, index=[f"{course['prefix']}_{i:04d}" for i in range(len(time))]
        ),
        var=pd.DataFrame(index=genes),
    ).write_h5ad(folder / "counts.h5ad")
    _write_manifest(folder, course["manifest"])
    return {"cells": len(time), "resistant_share": share, **extra}


def _rising_resistance(rng, raw: Path, genes, program) -> dict:
    """Resistance grows over four time points."""
    order = ["t0", "t12", "t48", "t96"]
    course = {
        "order": order,
        "resistant": [0.1, 0.35, 0.6, 0.85],
        "cells": 100,
        "column": "time",
        "prefix": "MCF7",
    }
    course["manifest"] = {
        "description": "Breast cancer line under bortezomib, 0-96 h (demo)",
        "drugs": ["Bortezomib"],
        "matrix": "counts.h5ad",
        "time": {"column": "time", "order": order, "sensitive": ["t0"], "resistant": ["t96"]},
    }
    return _time_course_dataset(rng, raw, genes, program, "mcf7_bortezomib", course)


def _drug_holiday(rng, raw: Path, genes, program) -> dict:
    """A drug holiday restores sensitivity."""
    order = ["D0", "D1", "D2", "D4", "D9", "D11", "D19ERL", "D19DMSO"]
    share = [0.05, 0.15, 0.25, 0.4, 0.6, 0.7, 0.85, 0.45]
    course = {"order": order, "resistant": share, "cells": 50, "column": "day", "prefix": "PC9"}
    course["manifest"] = {
        "description": "Lung cancer line under erlotinib with a drug holiday (demo)",
        "drugs": ["Erlotinib"],
        "matrix": "counts.h5ad",
        "time": {"column": "day", "order": order, "sensitive": ["D0"], "resistant": ["D19ERL"]},
        "contrasts": [
            {"name": "holiday_vs_retreated", "a": "D19DMSO", "b": "D19ERL"},
            {"name": "holiday_vs_day2", "a": "D19DMSO", "b": "D2"},
        ],
    }
    return _time_course_dataset(rng, raw, genes, program, "pc9_erlotinib", course)


def write_demo_raw(raw_dir: str | Path, seed: int = 7) -> Path:
    """Write the raw zone under `raw_dir` (idempotent for a seed); returns the truth file's path."""
    raw = Path(raw_dir)
    (raw / "datasets").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes, programs = _genes(rng)
    lines, sensitivity = _bulk(rng, genes, programs, raw)
    _response(rng, lines, sensitivity, raw)
    truth: dict = {"programs": programs, "datasets": {}}
    # in this order: each draws from the one generator
    truth["datasets"]["jhu006_gefitinib"] = _labelled_line(rng, raw, genes, programs["Gefitinib"])
    truth["datasets"]["mcf7_bortezomib"] = _rising_resistance(rng, raw, genes, programs["Bortezomib"])
    truth["datasets"]["pc9_erlotinib"] = _drug_holiday(rng, raw, genes, programs["Erlotinib"])
    for entry in truth["datasets"].values():
        entry.update(
            cells_removed_min_genes=LOW_GENE_CELLS,
            cells_removed_mito=HIGH_MITO_CELLS,
            genes_removed_min_cells=RARE_GENES,
        )
    truth["gdsc"] = {
        "cell_lines": N_LINES,
        "genes": N_GENES,
        "empty_symbol_rows": 5,
        "duplicated_symbols": 3,
        "drugs": list(DRUGS),
    }
    path = raw / "demo_truth.json"
    path.write_text(json.dumps(truth, indent=2))
    return path


if __name__ == "__main__":
    print(write_demo_raw(sys.argv[1] if len(sys.argv) > 1 else "dagster_home/data/raw"))
