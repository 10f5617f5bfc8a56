import dagster as dg

from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "paths": paths_from_env(),
            "warehouse": warehouse_from_env(),
            "mlflow_tracking": mlflow_from_env(),
        }
    )
