"""The paper's result figures as assets that follow each task's champion model: which cells
resist, how resistance moves over time, which genes drive it, how the latent space separates."""

import anndata as ad
import dagster as dg
import h5py
import numpy as np
import pandas as pd
import scanpy as sc
from anndata.io import read_elem
from dagster_duckdb import DuckDBResource
from pydantic import Field
from scipy import sparse

from ssda_assets.defs.single_cell.assets import sc_dataset
from ssda_assets.defs.training.assets import trained_model
from ssda_assets.operations.failures import input_errors
from ssda_assets.raw.ingest import LABEL, TIME
from ssda_assets.raw.manifest import read_manifest
from ssda_assets.raw.partitions import by_dataset, task_of, task_partitions
from ssda_assets.registry.versions import champion_model, model_name
from ssda_assets.reports import plots
from ssda_assets.reports.attribution import attribution_html
from ssda_assets.resources import MLflowTracking, PlatformPaths
from ssda_assets.storage.table_metadata import OWNERS, schema_of_ddl, schema_of_frame, table_metadata
from ssda_assets.storage.writes import replace_rows, write_atomically
from ssda_model.analysis import drift
from ssda_model.analysis.attribution import (
    GROUPS,
    attribution_summary,
    integrated_gradients,
    key_genes,
    shap_values,
)
from ssda_model.analysis.latent import class_silhouette, umap_2d
from ssda_model.analysis.sampling import strata_of, stratified_sample
from ssda_model.data.qc import BLOCK
from ssda_model.data.readers import close_h5ad, open_h5ad, row_blocks
from ssda_model.streaming import predict_file

# The assets' code version: bump it when a change here changes what an asset writes, so the UI marks
# materializations made by the old code as stale.
CODE_VERSION = "1"
# Re-run when the champion changes (trained_model's data version), not on every training.
FOLLOW_CHAMPION = dg.AutomationCondition.eager().replace(
    "any_deps_updated",
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).with_label(
        "champion_changed"
    ),
)
PREDICTIONS_SCHEMA = (
    "drug VARCHAR, dataset VARCHAR, cell_id VARCHAR, score DOUBLE, score_std DOUBLE, "
    "predicted VARCHAR, time_point VARCHAR, true_label TINYINT, model_version INTEGER"
)
DRIFT_SCHEMA = (
    "drug VARCHAR, dataset VARCHAR, kind VARCHAR, name VARCHAR, n_cells INTEGER, mean_score DOUBLE, "
    "median_score DOUBLE, pct_resistant DOUBLE, pct_resistant_low DOUBLE, pct_resistant_high DOUBLE, "
    "drift_w1 DOUBLE, delta_pct DOUBLE, statistic DOUBLE, p_value DOUBLE"
)
MARKERS_SCHEMA = (
    "drug VARCHAR, dataset VARCHAR, gene VARCHAR, scores DOUBLE, logfoldchanges DOUBLE, "
    "pvals DOUBLE, pvals_adj DOUBLE"
)


def _scored(paths: PlatformPaths, drug: str, dataset: str) -> ad.AnnData:
    """The scored cells: the ingested dataset's X on disk (read only where a sample asks), with the
    scores' obs and 32-d features from scored.h5ad, which holds no matrix of its own."""
    path = paths.predictions(drug, dataset) / "scored.h5ad"
    if not path.exists():
        raise dg.Failure(
            description=f"no predictions for {drug}/{dataset}: materialize cell_predictions first",
            allow_retries=False,
        )
    with h5py.File(path, "r") as handle:
        obs, features = read_elem(handle["obs"]), read_elem(handle["obsm/X_ssda"])
    cells = open_h5ad(paths.sc_dataset(dataset))
    if not cells.obs_names.equals(obs.index):
        close_h5ad(cells)
        raise dg.Failure(
            description=f"{drug}/{dataset}: the predictions ({len(obs)} cells) are older than sc_dataset "
            f"({cells.n_obs} cells): materialize cell_predictions again",
            allow_retries=False,
        )
    cells.obs, cells.obsm["X_ssda"] = obs, features
    return cells


def _strata(scored: ad.AnnData, *columns: str) -> np.ndarray:
    """Label × time point (or the given obs columns) of every cell, for stratified samples."""
    return strata_of(*(scored.obs[c].to_numpy() for c in columns if c in scored.obs))


def _rows_of(scored: ad.AnnData, rows: np.ndarray, genes: np.ndarray | None = None) -> ad.AnnData:
    """The sorted sampled `rows` (and `genes`, a mask) in memory: X read a block of cells at a time
    from the backed file, never its layers; obs and the 32-d features of those cells."""
    blocks = [values for _, values in row_blocks(scored, BLOCK, rows, genes)]
    return ad.AnnData(
        X=sparse.vstack(blocks, format="csr"),
        obs=scored.obs.iloc[rows],
        var=scored.var if genes is None else scored.var[genes],
        obsm={"X_ssda": np.asarray(scored.obsm["X_ssda"])[rows]},
    )


class SampleConfig(dg.Config):
    umap_cells: int = Field(
        default=10_000,
        description="UMAPs run on a seeded sample of at most this many cells, stratified by label and "
        "time point (0: every cell); every cell keeps its score and 32-d features in scored.h5ad.",
    )
    seed: int = Field(default=0, description="Seed of the samples.")


@dg.asset(
    group_name="analysis",
    kinds={"duckdb", "parquet", "anndata"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    deps=[trained_model, dg.AssetDep(sc_dataset, partition_mapping=by_dataset)],
    automation_condition=FOLLOW_CHAMPION,
)
def cell_predictions(
    context: dg.AssetExecutionContext,
    paths: PlatformPaths,
    warehouse: DuckDBResource,
    mlflow_tracking: MLflowTracking,
) -> dg.MaterializeResult:
    """Every cell of the dataset scored by the task's champion model: P(sensitive), its spread over
    the repetitions' models, the label at 0.5; scored.h5ad (obs and the features in obsm, no
    matrix: the cells' X is sc_dataset's) beside the table."""
    drug, dataset = task_of(context.partition_key)
    folder = paths.predictions(drug, dataset)
    with input_errors():
        model, champion = champion_model(
            mlflow_tracking.client(), model_name(drug, dataset), paths.model_cache
        )
        version = champion.version
        counts = predict_file(  # chunk by chunk from the backed file, as `ssda predict`
            model,
            paths.sc_dataset(dataset),
            folder / "scored.h5ad",
            model_path=f"models:/{model_name(drug, dataset)}/{version}",
            provenance={"model_version": version, "model_run_id": champion.run_id},
            copy_matrix=False,  # the cells' matrix stays sc_dataset's alone (`_scored`)
        )
    scored = _scored(paths, drug, dataset)
    obs = scored.obs
    frame = pd.DataFrame(
        {
            "drug": drug,
            "dataset": dataset,
            "cell_id": obs.index.astype(str),
            "score": obs["ssda_score"].to_numpy(float),
            "score_std": obs["ssda_score_std"].to_numpy(float),
            "predicted": obs["ssda_label"].astype(str).to_numpy(),
            "time_point": obs[TIME].astype(str).to_numpy() if TIME in obs else None,
            "true_label": obs[LABEL].astype("Int8").to_numpy(),
            "model_version": version,
        }
    )
    close_h5ad(scored)
    write_atomically(folder / "predictions.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    with warehouse.get_connection() as connection:
        replace_rows(
            connection, "cell_predictions", PREDICTIONS_SCHEMA, frame, {"drug": drug, "dataset": dataset}
        )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(len(frame), schema_of_ddl(PREDICTIONS_SCHEMA)),
            "champion_version": version,
            "champion_run_id": champion.run_id,
            "predicted_resistant": int((frame["score"] < 0.5).sum()),
            "pct_resistant": round(100 * float((frame["score"] < 0.5).mean()), 1),
            "genes_missing": counts["genes_missing"],
            "path": str(folder),
            "preview": dg.MetadataValue.md(frame.head(8).to_markdown(index=False)),
        }
    )


@dg.asset(
    group_name="analysis",
    kinds={"duckdb"},
    partitions_def=task_partitions,
    code_version=CODE_VERSION,
    owners=OWNERS,
    deps=[cell_predictions],
    output_required=False,
    automation_condition=dg.AutomationCondition.eager(),
)
def temporal_drift(
    context: dg.AssetExecutionContext, config: SampleConfig, paths: PlatformPaths, warehouse: DuckDBResource
):
    """Per time point: n, mean / median score, % resistant (95 % bootstrap CI); between consecutive
    points a signed Wasserstein-1 drift and the change in % resistant (Fisher); Kendall τ over the
    order; the manifest's named contrasts. Statistics use every cell; the UMAPs a stated sample."""
    drug, dataset = task_of(context.partition_key)
    manifest = read_manifest(paths.raw / "datasets" / dataset)
    if manifest.time is None:
        context.log.info(
            f"{dataset} has no time points (no 'time' in its dataset.yaml): temporal_drift skipped"
        )
        return
    scored = _scored(paths, drug, dataset)
    order = list(manifest.time.order)
    scores, times = scored.obs["ssda_score"].astype(float), scored.obs[TIME].astype(str)
    report = drift.drift_report(scores, times, order, [(c.name, c.a, c.b) for c in manifest.contrasts])
    per_point, steps, trend, contrasts = report.per_point, report.steps, report.trend, report.contrasts
    table = report.table.assign(drug=drug, dataset=dataset)
    with warehouse.get_connection() as connection:
        replace_rows(connection, "temporal_drift", DRIFT_SCHEMA, table, {"drug": drug, "dataset": dataset})
    frame = pd.DataFrame({"score": scores.to_numpy(), "time_point": times.to_numpy()})
    rows = stratified_sample(_strata(scored, LABEL, TIME), config.umap_cells, config.seed)
    features = np.asarray(scored.obsm["X_ssda"])[rows]
    close_h5ad(scored)
    coords = umap_2d(features)
    figures = (
        plots.score_by_time(frame, order)
        + plots.stacked_response(per_point)
        + plots.embedding(coords, times.iloc[rows], "UMAP of features by time point")
        + plots.embedding(coords, scores.iloc[rows], "UMAP of features by score")
    )
    yield dg.MaterializeResult(
        metadata={
            "cells": len(scores),
            **table_metadata(len(table), schema_of_ddl(DRIFT_SCHEMA)),
            "umap_cells": len(rows),
            "umap_sample": _sample_note(len(rows), len(scores), config.seed),
            "kendall_tau": float(trend["kendall_tau"]),
            "trend_p_value": float(trend["p_value"]),
            "pct_resistant_first": float(per_point["pct_resistant"].iloc[0]),
            "pct_resistant_last": float(per_point["pct_resistant"].iloc[-1]),
            **{
                f"contrast {n}": f"{c['delta_pct_sensitive']:+.1f} % sensitive (p = {c['p_value']:.2g})"
                for n, c in contrasts.items()
            },
            "per_time_point": dg.MetadataValue.md(per_point.round(3).to_markdown(index=False)),
            "drift": dg.MetadataValue.md(steps.round(4).to_markdown(index=False)),
            "plots": dg.MetadataValue.md(figures),
        }
    )


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def _sample_note(used: int, total: int, seed: int) -> str:
    if used == total:
        return f"every cell ({total})"
    return f"{used} of {total} cells, stratified by label and time point, seed {seed}"


class MarkersConfig(dg.Config):
    min_abs_log2fc: float = Field(
        default=1.0, description="A marker's |log2 fold change|, resistant vs sensitive, is above this."
    )
    max_padj: float = Field(
        default=0.05, description="A marker's Benjamini–Hochberg adjusted p is below this."
    )
    top_per_side: int = Field(
        default=10, description="Markers shown per side with their fraction of expressing cells."
    )
    # 20,000 cells hold ~10,000 per side, and the test took 177 s on 50,000 cells of 20,000 genes here.
    max_cells: int = Field(
        default=20_000,
        description="Wilcoxon on a seeded sample of at most this many cells, stratified by prediction "
        "and time point (0: every cell).",
    )
    seed: int = Field(default=0, description="Seed of the sample.")


@dg.asset(
    group_name="analysis",
    kinds={"duckdb"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    deps=[cell_predictions],
    automation_condition=dg.AutomationCondition.eager(),
)
def resistance_markers(
    context: dg.AssetExecutionContext, config: MarkersConfig, paths: PlatformPaths, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Wilcoxon DE of predicted-resistant vs predicted-sensitive cells (|log2FC| > 1, adj. p < 0.05 by
    default), the top 10 of each side with their fraction of expressing cells per time point (Fig. 4h)."""
    drug, dataset = task_of(context.partition_key)
    backed = _scored(paths, drug, dataset)
    total = backed.n_obs
    rows = stratified_sample(_strata(backed, "ssda_label", TIME), config.max_cells, config.seed)
    scored = _rows_of(backed, rows)
    close_h5ad(backed)
    if scored.obs["ssda_label"].nunique() < 2:
        raise dg.Failure(
            description=f"{drug}/{dataset}: every cell is predicted {scored.obs['ssda_label'].iloc[0]}; "
            "no contrast to test",
            allow_retries=False,
        )
    sc.tl.rank_genes_groups(
        scored, "ssda_label", groups=["resistant"], reference="sensitive", method="wilcoxon"
    )
    table = sc.get.rank_genes_groups_df(scored, group="resistant")
    keep = table[
        (table["logfoldchanges"].abs() > config.min_abs_log2fc) & (table["pvals_adj"] < config.max_padj)
    ]
    up = (
        keep.sort_values("logfoldchanges", ascending=False).head(config.top_per_side).assign(side="resistant")
    )
    down = keep.sort_values("logfoldchanges").head(config.top_per_side).assign(side="sensitive")
    top = pd.concat([up, down])
    groups = scored.obs[TIME].astype(str) if TIME in scored.obs else scored.obs["ssda_label"].astype(str)
    expressing = pd.DataFrame(index=top["names"])
    for group in pd.unique(groups):
        subset = scored[(groups == group).to_numpy(), top["names"].tolist()].X
        expressing[f"fraction_{group}"] = (_dense(subset) > 0).mean(axis=0)
    out = keep.assign(drug=drug, dataset=dataset).rename(columns={"names": "gene"})
    with warehouse.get_connection() as connection:
        replace_rows(
            connection,
            "resistance_markers",
            MARKERS_SCHEMA,
            out[["drug", "dataset", "gene", "scores", "logfoldchanges", "pvals", "pvals_adj"]],
            {"drug": drug, "dataset": dataset},
        )
    return dg.MaterializeResult(
        metadata={
            "cells_tested": len(rows),
            "sample": _sample_note(len(rows), total, config.seed),
            "markers": len(keep),
            **table_metadata(len(out), schema_of_ddl(MARKERS_SCHEMA)),
            "up_in_resistant": int((keep["logfoldchanges"] > 0).sum()),
            "up_in_sensitive": int((keep["logfoldchanges"] < 0).sum()),
            "marker_rule": f"|log2FC| > {config.min_abs_log2fc:g}, adjusted p < {config.max_padj:g}",
            "top_markers": dg.MetadataValue.md(
                top[["side", "names", "logfoldchanges", "pvals_adj"]].round(4).to_markdown(index=False)
            ),
            "fraction_expressing": dg.MetadataValue.md(expressing.round(3).to_markdown()),
            "volcano": dg.MetadataValue.md(plots.volcano(table, fc=config.min_abs_log2fc)),
        }
    )


class AttributionConfig(dg.Config):
    ig_steps: int = Field(
        default=32,
        description="Integrated gradients: Gauss–Legendre points per cell to start with; a cell whose "
        "completeness gap is still ≥ ig_max_gap is integrated again with twice the points, up to 2,048.",
    )
    ig_max_gap: float = Field(default=0.01, description="Largest completeness gap accepted, in P(sensitive).")
    ig_cells: int = Field(
        default=2_000,
        description="IG explains a seeded sample of at most this many cells, stratified by prediction "
        "and time point (0: every cell); every cell keeps its score in cell_predictions.",
    )
    shap_background: int = Field(
        default=200, description="SHAP's reference cells, drawn once; their number does not change the cost."
    )
    shap_cells: int = Field(
        default=32,
        description="SHAP costs 200 passes of the network per explained cell, so it explains a random "
        "sample of this many cells (0: every cell).",
    )
    top_genes: int = Field(default=20, description="Genes in the top table and the SHAP bar chart.")
    key_min_log2fc: float = Field(
        default=1.0, description="Key genes: log2 fold change of mean |IG| between the groups is above this."
    )
    key_max_padj: float = Field(default=0.05, description="Key genes: adjusted p is below this.")
    key_genes_shown: int = Field(default=40, description="Rows of the key-gene table in the HTML report.")
    seed: int = Field(default=0, description="Which cells SHAP explains and which background cells it draws.")


@dg.asset(
    group_name="analysis",
    kinds={"html"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    deps=[cell_predictions],
    automation_condition=dg.AutomationCondition.eager(),
)
def attribution_report(
    context: dg.AssetExecutionContext,
    config: AttributionConfig,
    paths: PlatformPaths,
    mlflow_tracking: MLflowTracking,
) -> dg.MaterializeResult:
    """Integrated gradients of P(sensitive) for every cell and SHAP for a sample of them; per-gene mean
    |attribution| per predicted group, the top genes, rank_genes_groups on |IG|; an HTML report per task."""
    drug, dataset = task_of(context.partition_key)
    backed = _scored(paths, drug, dataset)
    total = backed.n_obs
    with input_errors():
        model, champion = champion_model(
            mlflow_tracking.client(), model_name(drug, dataset), paths.model_cache
        )
    rows = stratified_sample(_strata(backed, "ssda_label", TIME), config.ig_cells, config.seed)
    scored = _rows_of(backed, rows, backed.var_names.isin(model.genes))  # the model's genes only
    close_h5ad(backed)
    x, _ = model.align(scored)
    ig, gaps, steps = integrated_gradients(model, x, n_steps=config.ig_steps, max_gap=config.ig_max_gap)
    rng = np.random.default_rng(config.seed)
    background = x[rng.choice(len(x), size=min(config.shap_background, len(x)), replace=False)]
    n_shap = len(x) if config.shap_cells <= 0 else min(config.shap_cells, len(x))
    shap_rows = np.sort(rng.choice(len(x), size=n_shap, replace=False))
    shap_matrix = shap_values(model, x[shap_rows], background, seed=config.seed)
    groups = scored.obs["ssda_label"].astype(str).to_numpy()
    summary = attribution_summary(ig, shap_matrix, shap_rows, groups, model.genes)
    top_ig = summary.sort_values("ig_all", ascending=False).head(config.top_genes)
    key = key_genes(ig, groups, model.genes, config.key_min_log2fc, config.key_max_padj)
    max_gap = float(np.abs(gaps).max())  # in units of P(sensitive)
    figures = shap_figures(shap_matrix, x[shap_rows], groups[shap_rows], model.genes, config.top_genes)
    method = (
        f"Integrated gradients (baseline = gene means, {_step_counts(steps)} Gauss–Legendre steps, "
        f"largest completeness gap {max_gap:.1e} in P(sensitive)) for "
        f"{_sample_note(len(x), total, config.seed)} and SHAP "
        "(expected gradients "
        f"as GradientExplainer, {len(background)} background cells) of P(sensitive) for {n_shap} of them."
    )
    key_rule = (
        f"rank_genes_groups on |IG|, log2FC &gt; {config.key_min_log2fc:g}, "
        f"adj. p &lt; {config.key_max_padj:g}"
    )
    html = attribution_html(
        f"{drug} / {dataset}",
        champion.version,
        method,
        top_ig,
        key,
        figures,
        key_rule,
        config.key_genes_shown,
    )
    report_dir = paths.reports / f"{drug}__{dataset}"
    write_atomically(report_dir / "attribution.html", lambda tmp: tmp.write_text(html))
    write_atomically(
        report_dir / "attribution_genes.parquet",
        lambda tmp: summary.rename_axis("gene").reset_index().to_parquet(tmp, index=False),
    )
    # the champion's MLflow run shows the report (MLflow renders HTML artifacts) beside its metrics
    report = str(report_dir / "attribution.html")
    mlflow_tracking.client().log_artifact(champion.run_id, report, "attribution")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(report_dir / "attribution.html")),
            "cells": total,
            # the table of the asset: attribution_genes.parquet, one row per gene
            **table_metadata(len(summary), schema_of_frame(summary.rename_axis("gene").reset_index())),
            "ig_cells": len(x),
            "ig_sample": _sample_note(len(x), total, config.seed),
            "champion_version": champion.version,
            "ig_completeness_max_gap": max_gap,
            "ig_steps": _step_counts(steps),
            "shap_cells": n_shap,
            "shap_background": len(background),
            "key_genes": len(key),
            "key_gene_rule": key_rule.replace("&gt;", ">").replace("&lt;", "<"),
            "seed": config.seed,
            f"top{config.top_genes}_ig": dg.MetadataValue.md(top_ig.round(5).to_markdown()),
            "plots": dg.MetadataValue.md(figures),
        }
    )


def shap_figures(
    values: np.ndarray, expression: np.ndarray, groups: np.ndarray, genes: list[str], top: int
) -> str:
    """The mean |SHAP| bar chart and a beeswarm per predicted group of more than one cell."""
    figures = plots.mean_abs_bar(
        pd.Series(np.abs(values).mean(axis=0), index=genes), f"Mean |SHAP| of the top {top} genes", top=top
    )
    for group in GROUPS:
        mask = groups == group
        if mask.sum() > 1:
            figures += plots.beeswarm(
                values[mask], expression[mask], genes, f"SHAP values, {group} cells", top=top
            )
    return figures


def _step_counts(steps: np.ndarray) -> str:
    """'32 (290 cells), 64 (10 cells)': how many cells took each IG step count."""
    counts = pd.Series(steps).value_counts().sort_index()
    return ", ".join(f"{n} ({c} cell{'s' * (c > 1)})" for n, c in counts.items())


class LatentMapConfig(SampleConfig):
    silhouette_cells: int = Field(
        default=2_000,
        description="Labelled cells in the silhouettes: a seeded sample stratified by label (0: all).",
    )


@dg.asset(
    group_name="analysis",
    kinds={"umap"},
    code_version=CODE_VERSION,
    owners=OWNERS,
    partitions_def=task_partitions,
    deps=[cell_predictions],
    automation_condition=dg.AutomationCondition.eager(),
)
def latent_map(
    context: dg.AssetExecutionContext, config: LatentMapConfig, paths: PlatformPaths
) -> dg.MaterializeResult:
    """UMAP of raw expression and of the 32-d features, coloured by label and prediction, and the
    silhouette of the two classes in each space (the paper: mostly > 0.5 in the latent space), each
    on a stated, seeded sample: silhouettes are quadratic in cells."""
    drug, dataset = task_of(context.partition_key)
    backed = _scored(paths, drug, dataset)
    total, labels = backed.n_obs, backed.obs[LABEL].to_numpy(float)
    labelled = np.flatnonzero(~np.isnan(labels))
    pairs = labelled[stratified_sample(labels[labelled], config.silhouette_cells, config.seed)]
    rows = stratified_sample(_strata(backed, LABEL, TIME), config.umap_cells, config.seed)
    pair_cells, cells = _rows_of(backed, pairs), _rows_of(backed, rows)
    close_h5ad(backed)
    silhouette_raw = class_silhouette(pair_cells.X, labels[pairs])
    silhouette_latent = class_silhouette(np.asarray(pair_cells.obsm["X_ssda"]), labels[pairs])
    raw_map, latent = umap_2d(cells.X, pca=True), umap_2d(np.asarray(cells.obsm["X_ssda"]))
    colour = cells.obs[LABEL].map({1.0: "sensitive", 0.0: "resistant"}).fillna("unlabelled").astype(str)
    figures = (
        plots.embedding(raw_map, colour, "Raw expression, true labels")
        + plots.embedding(latent, colour, "SSDA features, true labels")
        + plots.embedding(latent, cells.obs["ssda_label"].astype(str), "SSDA features, predicted")
    )
    return dg.MaterializeResult(
        metadata={
            "silhouette_raw": silhouette_raw,
            "silhouette_latent": silhouette_latent,
            "labelled_cells": len(labelled),
            "silhouette_cells": len(pairs),
            "silhouette_sample": _sample_note(len(pairs), len(labelled), config.seed).replace(
                "label and time point", "label"
            ),
            "umap_cells": len(rows),
            "umap_sample": _sample_note(len(rows), total, config.seed),
            "plots": dg.MetadataValue.md(figures),
        }
    )
