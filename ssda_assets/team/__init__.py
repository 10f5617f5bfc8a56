"""Team mode: Dagster on PostgreSQL, steps on Celery workers, MLflow as a tracking server."""
