"""The model registry rules: one registered model per task, every training a new version,
`challenger` on the newest, `champion` only for a version at least as good as the current one."""

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from ssda_assets.registry.lock import registry_lock
from ssda_assets.registry.uri import NATIVE_ARTIFACT, native_location
from ssda_assets.storage.writes import write_atomically
from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel
from ssda_model.outputs import MARKER

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_ARTIFACTS = NATIVE_ARTIFACT  # the native model folder inside each logged (pyfunc) model


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
    are never deleted here (retention does, never an aliased one: ssda_assets.registry.retention). Under the
    model's registry lock: trainings that finish together (several
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


def native_files(client: MlflowClient, name: str, version: int) -> tuple[str, dict[str, int]]:
    """The artifact URI of a version's native model folder (inside its logged model, where the
    weights are stored once) and the size of each file there by relative name; no files when the
    version is not an ssda4drug model or its files are gone."""
    source = client.get_model_version_download_uri(name, str(version))
    with tempfile.TemporaryDirectory(prefix="ssda-mlmodel-") as scratch:
        location = native_location(source, Path(scratch), client.tracking_uri)
    if location is None:
        return source, {}
    return location, artifact_sizes(get_artifact_repository(location, tracking_uri=client.tracking_uri))


def model_bytes(client: MlflowClient, name: str) -> int:
    """The size of the newest version's native model files (0 when there is none or they cannot be
    listed): what the next training will store about, to check the free space before it writes."""
    try:
        newest = _current_champion(client, name, CHALLENGER)
        return sum(native_files(client, name, int(newest.version))[1].values()) if newest else 0
    except (MlflowException, OSError):
        return 0


def artifact_sizes(repository: ArtifactRepository, path: str | None = None) -> dict[str, int]:
    """Relative file name → size of every artifact under `path` of the repository, as it lists it."""
    sizes = {}
    for info in repository.list_artifacts(path):
        if info.is_dir:
            sizes.update(artifact_sizes(repository, info.path))
        else:
            sizes[info.path] = info.file_size or 0
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
        location, expected = native_files(client, name, champion.version)
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
            moved = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=str(staging), tracking_uri=client.tracking_uri
                )
            )
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
