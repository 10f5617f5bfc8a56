"""The model registry rules: one registered model per task, every training a new version,
`challenger` on the newest, `champion` only for a version at least as good as the current one."""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel

CHAMPION, CHALLENGER = "champion", "challenger"


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


def _current_champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def apply_aliases(client: MlflowClient, name: str, version: int, score: float, basis: str) -> Registration:
    """Move `challenger` to `version`; move `champion` to it when its score on the same basis
    (protocol and evaluation set) is at least the champion's. Versions are never deleted."""
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    audit = [f"{CHALLENGER} → v{version}"]
    champion = _current_champion(client, name)
    score_text = "nan" if math.isnan(score) else f"{score:.4f}"
    if champion is None:
        promote, reason = True, "first version"
    elif champion.tags.get("basis") != basis:
        promote, reason = False, (f"v{champion.version} was scored on {champion.tags.get('basis')}, this version on "
                                  f"{basis}: not comparable, promote by hand if wanted")
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
    return Registration(name=name, version=version, aliases=sorted(aliases), champion=champion_version, audit=audit)


def champion_model(client: MlflowClient, name: str, cache: Path) -> tuple[SSDAModel, int]:
    """The native ssda_model of the `champion` version (downloaded once into `cache`) and its number.

    A task without a champion is a clear error naming the training to run.
    """
    version = _current_champion(client, name)
    if version is None:
        raise SSDAInputError(name, "has no champion model version: materialize trained_model for this task first")
    folder = cache / name / f"v{version.version}"
    if not (folder / "ssda_model" / "model.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(version.tags["mlflow_run_id"], "ssda_model", str(folder))
    return SSDAModel.load(folder / "ssda_model"), int(version.version)
