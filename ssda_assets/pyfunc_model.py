"""The MLflow pyfunc face of a fitted ssda_model: a DataFrame of genes in, P(sensitive) out.

The native model directory rides along as an artifact, so attribution and `ssda predict` can use
the very same weights.
"""

import anndata as ad
import mlflow.pyfunc
import numpy as np
import pandas as pd

from ssda_model.model import SSDAModel


def score_frame(model: SSDAModel, frame: pd.DataFrame) -> pd.DataFrame:
    """P(sensitive) and its spread over the repetitions' models for each row of `frame`."""
    cells = ad.AnnData(
        X=frame.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=frame.index.astype(str)),
        var=pd.DataFrame(index=frame.columns.astype(str)),
    )
    scored = model.predict(cells, name="pyfunc input", device="cpu")
    return pd.DataFrame(
        {
            "ssda_score": scored.obs["ssda_score"].to_numpy(),
            "ssda_score_std": scored.obs["ssda_score_std"].to_numpy(),
        },
        index=frame.index,
    )


class SSDAPyfunc(mlflow.pyfunc.PythonModel):
    """Columns = gene identifiers (log-expression as the model's target was given); rows = cells."""

    def load_context(self, context) -> None:
        self.model = SSDAModel.load(context.artifacts["ssda_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return score_frame(self.model, model_input)
