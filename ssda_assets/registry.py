"""The model registry rules: one registered model per task, every training a new version,
`challenger` on the newest, `champion` only for a version at least as good as the current one."""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ssda_assets.registry_lock import registry_lock
from ssda_assets.storage import write_atomically
from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel
from ssda_model.outputs import MARKER

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_ARTIFACTS = "ssda_model"  # the native model folder inside each training's MLflow run


def model_name(drug: str, dataset: str) -> str:
    """`ssda-<drug>-<dataset>` in [a-z0-9-]."""
    return "ssda-" + re.sub(r"[^a-z0-9]+", "-", f"{drug}-{dataset}".lower()).strip("-")


@dataclass
class Registration:
    name: str
    version: int
    aliases: list[str]
    champion: int  # the champion's version after this registration
    audit: list[str] = field(default_factory=list)


def _current_champion(client: MlflowClient, name: str, alias: str = CHAMPION):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def apply_aliases(client: MlflowClient, name: str, version: int, score: float, basis: str) -> Registration:
    """Move `challenger` to `version` unless a newer version holds it; move `champion` to it when
    its score on the same basis (protocol and evaluation set) is at least the champion's. Versions
    are never deleted. Under the model's registry lock: trainings that finish together (several
    workers) take turns, so each compares against the champion the one before it left."""
    with registry_lock(client.tracking_uri, name):
        return _move_aliases(client, name, version, score, basis)


def _move_aliases(client: MlflowClient, name: str, version: int, score: float, basis: str) -> Registration:
    challenger = _current_champion(client, name, CHALLENGER)
    if challenger is None or int(challenger.version) < version:
        client.set_registered_model_alias(name, CHALLENGER, str(version))
        audit = [f"{CHALLENGER} → v{version}"]
    else:
        audit = [f"{CHALLENGER} stays v{challenger.version} (newer)"]
    champion = _current_champion(client, name)
    score_text = "nan" if math.isnan(score) else f"{score:.4f}"
    if champion is None:
        promote, reason = True, "first version"
    elif champion.tags.get("basis") != basis:
        promote, reason = (
            False,
            (
                f"v{champion.version} was scored on {champion.tags.get('basis')}, this version on "
                f"{basis}: not comparable, promote by hand if wanted"
            ),
        )
    else:
        best = float(champion.tags.get("auc", "nan"))
        promote = not math.isnan(score) and (math.isnan(best) or score >= best)
        reason = f"AUC {score_text} {'≥' if promote else '<'} v{champion.version}'s {best:.4f}"
    if promote:
        client.set_registered_model_alias(name, CHAMPION, str(version))
        previous = f"v{champion.version}" if champion is not None else "none"
        audit.append(f"{CHAMPION}: {previous} → v{version} ({reason})")
    else:
        audit.append(f"{CHAMPION} stays v{champion.version} ({reason})")
    aliases = [a for a in client.get_model_version(name, str(version)).aliases]
    champion_version = version if promote else int(champion.version)
    return Registration(
        name=name, version=version, aliases=sorted(aliases), champion=champion_version, audit=audit
    )


def register_version(
    client: MlflowClient, model_uri: str, name: str, score: float, basis: str, tags: dict[str, str]
) -> Registration:
    """Register `model_uri` as a new version of `name` and move the aliases; a failure before the
    aliases are set removes the version again, so none is left half-registered."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # The client, not mlflow.register_model: same record, without its lines on stderr.
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    created = client.create_model_version(
        name,
        model_uri,
        run_id=tags.get("mlflow_run_id"),
        model_id=model_id,
        tags={**tags, "auc": repr(score)},
    )  # exact: ties promote
    try:
        return apply_aliases(client, name, int(created.version), score, basis)
    except BaseException:
        client.delete_model_version(name, created.version)
        raise


@dataclass(frozen=True)
class Champion:
    """Which model scored the cells: the registered version and the MLflow run that produced it
    (run ids are unique across stores, version numbers restart when a store is reset)."""

    name: str
    version: int
    run_id: str


def _artifact_sizes(client: MlflowClient, run_id: str, path: str = MODEL_ARTIFACTS) -> dict[str, int]:
    """Relative file name → size of every artifact under `path` of the run, as the store lists it."""
    sizes = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            sizes.update(_artifact_sizes(client, run_id, info.path))
        else:
            sizes[info.path.removeprefix(f"{MODEL_ARTIFACTS}/")] = info.file_size
    return sizes


def _cached(folder: Path, expected: dict[str, int]) -> bool:
    """Whether `folder` holds exactly the store's files (the writer's own marker aside)."""
    files = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    files.pop(MARKER, None)
    return bool(expected) and files == {k: v for k, v in expected.items() if k != MARKER}


def champion_model(client: MlflowClient, name: str, cache: Path) -> tuple[SSDAModel, Champion]:
    """The native ssda_model of the current `champion` version of the configured store.

    The local copy lives under `cache/<name>/<run id>`; it is used only when its files match the
    store's listing, and a download lands there only once complete. A task without a champion, or
    a champion whose artifacts are gone, is a clear error naming the training to run.
    """
    version = _current_champion(client, name)
    if version is None:
        raise SSDAInputError(
            name, "has no champion model version: materialize trained_model for this task first"
        )
    champion = Champion(name, int(version.version), version.run_id or version.tags.get("mlflow_run_id", ""))
    retrain = (
        f"materialize trained_model for task {version.tags.get('task', name)} to register a new champion"
    )
    try:
        expected = _artifact_sizes(client, champion.run_id)
    except (MlflowException, OSError) as exc:
        raise SSDAInputError(
            f"{name} v{champion.version}",
            f"cannot list the champion's artifacts ({type(exc).__name__}); {retrain}",
        ) from None
    if not expected:
        raise SSDAInputError(
            f"{name} v{champion.version}",
            f"the champion's model files (run {champion.run_id}) are gone from the store; {retrain}",
        )
    folder = cache / name / champion.run_id
    if not _cached(folder, expected):

        def download(staging: Path) -> None:
            staging.mkdir()
            client.download_artifacts(champion.run_id, MODEL_ARTIFACTS, str(staging))
            moved = staging / MODEL_ARTIFACTS
            for item in moved.iterdir():
                item.rename(staging / item.name)
            moved.rmdir()
            if not _cached(staging, expected):
                raise SSDAInputError(
                    f"{name} v{champion.version}",
                    f"the downloaded model files differ from the store's listing; {retrain}",
                )

        try:
            write_atomically(folder, download)
        except (MlflowException, OSError) as exc:
            raise SSDAInputError(
                f"{name} v{champion.version}",
                f"cannot download the champion's model files ({type(exc).__name__}: {exc}); {retrain}",
            ) from None
    return SSDAModel.load(folder), champion
