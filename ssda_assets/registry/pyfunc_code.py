"""MLflow models-from-code entry point: MLflow runs this file to build the pyfunc, so no pickle is stored."""

import mlflow

from ssda_assets.registry.pyfunc import SSDAPyfunc

mlflow.models.set_model(SSDAPyfunc())
