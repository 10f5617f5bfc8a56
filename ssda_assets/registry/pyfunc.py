"""The MLflow pyfunc face of a fitted ssda_model: a DataFrame of genes in, P(sensitive) out.

The native model directory rides along as an artifact, so attribution and `ssda predict` can use
the very same weights. A frame is read as the native model reads an AnnData: columns matched by
gene in any order, columns the model does not read ignored, the model's genes that are absent set
to their training mean, more than half absent refused. Columns named by Entrez or Ensembl IDs
(or outdated symbols) are mapped to official symbols with the table the platform maps a dataset's
genes with (`ssda_model.data.gene_ids`).
"""

from collections import defaultdict

import anndata as ad
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature

from ssda_model.data.gene_ids import guess_id_type, human_gene_table, map_gene_ids
from ssda_model.data.genes import collapse_duplicate_genes
from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel

INPUT = "pyfunc input"  # how errors name the frame
SHOWN = 5  # missing genes or bad columns an error names


def model_genes_of(model: SSDAModel, columns: list[str]) -> list[str | None]:
    """Per column, the model gene it holds, or None for a column the model does not read.

    A column named exactly as a model gene is that gene. The others are mapped to official human
    symbols as the platform maps a dataset (`map_gene_ids` with the shipped table), each column by
    the kind of identifier it looks like (`guess_id_type`: Entrez number, Ensembl ID, symbol), so
    a column of metadata beside Ensembl-named genes does not turn the genes into symbols.
    """
    wanted = set(model.genes)
    genes: list[str | None] = [c if c in wanted else None for c in columns]
    if all(g is not None for g in genes):
        return genes
    by_type: dict[str, list[int]] = defaultdict(list)
    for position, column in enumerate(columns):
        by_type[guess_id_type([column])].append(position)
    table = human_gene_table()
    for id_type, positions in by_type.items():
        mapping = map_gene_ids([columns[p] for p in positions], id_type, table)
        for position, symbol in zip(positions, mapping.symbols, strict=True):
            if genes[position] is None and symbol in wanted:
                genes[position] = symbol
    return genes


def score_frame(model: SSDAModel, frame: pd.DataFrame) -> pd.DataFrame:
    """P(sensitive) and its spread over the repetitions' models for each row of `frame`.

    Rows are cells, columns genes (log-expression as the model's target was given), named by
    symbol, Entrez or Ensembl ID, in any order; other columns are ignored. The rule on absent genes
    is the native model's (`SSDAModel.missing_genes`); refusing, it names how many and which.
    """
    genes = model_genes_of(model, list(map(str, frame.columns)))
    kept = [i for i, g in enumerate(genes) if g is not None]
    names = [g for g in genes if g is not None]
    try:
        model.missing_genes(names, INPUT)
    except SSDAInputError:
        absent = [g for g in model.genes if g not in set(names)]
        raise SSDAInputError(
            INPUT,
            f"lacks {len(absent)} of the model's {len(model.genes)} genes ({_first(absent)}); at least "
            "half are needed, as columns named by gene symbol, Entrez or Ensembl ID",
        ) from None
    columns = frame.iloc[:, kept]
    text = [str(c) for c, dtype in columns.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if text:
        raise SSDAInputError(INPUT, f"{len(text)} gene columns do not hold numbers ({_first(text)})")
    values, var_names = collapse_duplicate_genes(columns.to_numpy(dtype=np.float32), pd.Index(names))
    cells = ad.AnnData(
        X=values, obs=pd.DataFrame(index=frame.index.astype(str)), var=pd.DataFrame(index=var_names)
    )
    scored = model.predict(cells, name=INPUT, device="cpu")
    return pd.DataFrame(
        {
            "ssda_score": scored.obs["ssda_score"].to_numpy(),
            "ssda_score_std": scored.obs["ssda_score_std"].to_numpy(),
        },
        index=frame.index,
    )


def pyfunc_signature(model: SSDAModel, example: pd.DataFrame) -> ModelSignature:
    """The signature to log with the pyfunc: its output columns and no input schema.

    An input schema naming the genes would make MLflow refuse a frame lacking any of them and
    drop, before `predict` sees them, the columns it does not name (Entrez or Ensembl IDs);
    `score_frame` checks the frame itself. The genes are the artifact's `ssda_model/genes.txt`.
    """
    return ModelSignature(inputs=None, outputs=infer_signature(example, score_frame(model, example)).outputs)


def _first(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", …" if len(names) > SHOWN else "")


class SSDAPyfunc(mlflow.pyfunc.PythonModel):
    """Columns = genes by symbol, Entrez or Ensembl ID (log-expression as the model's target was
    given); rows = cells. Bad input is an MlflowException with one line (HTTP 400 when served)."""

    def load_context(self, context) -> None:
        self.model = SSDAModel.load(context.artifacts["ssda_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return score_frame(self.model, model_input)
        except SSDAInputError as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
