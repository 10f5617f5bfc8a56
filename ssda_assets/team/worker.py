"""The Celery app a team worker runs (`celery -A ssda_assets.team.worker worker -Q gpu,dagster`):
dagster-celery's step task, on the broker and result backend of SSDA_CELERY_BROKER / _BACKEND."""

from ssda_assets.team import missing_team_package
from ssda_assets.team.executor import worker_app_args

try:
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task
except ImportError as error:
    raise missing_team_package(error) from None

app = make_app(worker_app_args())
execute_plan = create_task(app)
