"""Bounded storage: after each training, a model keeps the files of its `champion`, its `challenger`
and its last K versions (`SSDA_KEEP_VERSIONS`, default 5); the others' files are removed, so a
task's storage stays bounded however often it retrains.

What goes per removed version: its logged model (the weights, stored once per version) and its
training run's artifacts; the local copies under `data/models/<model>/` keep the champion's only
(the analyses score with it and fetch a new champion's when it moves). `SSDA_RETENTION`
says what happens to the records: `archive` (default) keeps the version and its run (metrics,
params, tags: the history stays readable) and tags both `ssda_retention` with what was removed;
`delete` also deletes the version from the registry and the run from the experiment (MLflow
keeps a deleted run until `mlflow gc`). `off` keeps everything. A version an alias points to, or
whose training is still running, is never touched. The registered model's tag `ssda_retention`
and the training's materialization (`retention`) say what the last pass removed.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from ssda_assets.registry.lock import registry_lock
from ssda_assets.registry.uri import RETENTION_TAG
from ssda_assets.registry.versions import CHAMPION, artifact_sizes

MODES = ("archive", "delete", "off")
TAG = RETENTION_TAG


@dataclass
class Pruned:
    """One retention pass over a registered model."""

    name: str
    kept: list[int]
    removed: list[int] = field(default_factory=list)
    freed_bytes: int = 0
    mode: str = "archive"

    @property
    def summary(self) -> str:
        kept = ", ".join(f"v{v}" for v in self.kept)
        if not self.removed:
            return f"nothing removed; kept {kept}"
        verb = "deleted" if self.mode == "delete" else "archived (files removed)"
        removed = ", ".join(f"v{v}" for v in self.removed)
        return f"{verb} {removed}, {self.freed_bytes / 2**20:.1f} MB freed; kept {kept}"


def _remove_files(client: MlflowClient, uri: str) -> int:
    """Delete every artifact under `uri`; the bytes it held."""
    repository = get_artifact_repository(uri, tracking_uri=client.tracking_uri)
    size = sum(artifact_sizes(repository).values())
    if size:
        repository.delete_artifacts()
    return size


def apply_retention(client: MlflowClient, name: str, keep_last: int, mode: str, cache: Path) -> Pruned:
    """Remove the files (and in `delete` mode the records) of `name`'s versions that are neither
    aliased nor among the `keep_last` newest; `cache` is the platform's local model folder
    (`<cache>/<name>/<run id>`). Under the model's registry lock, so no alias moves meanwhile."""
    if mode not in MODES:
        raise ValueError(f"SSDA_RETENTION={mode!r}: expected one of {', '.join(MODES)}")
    with registry_lock(client.tracking_uri, name):
        quoted = name.replace("'", "\\'")
        found = {int(v.version): v.run_id for v in client.search_model_versions(f"name = '{quoted}'")}
        numbers = sorted(found, reverse=True)
        aliases = client.get_registered_model(name).aliases or {}
        aliased = {int(v) for v in aliases.values()}
        if mode == "off" or keep_last <= 0:
            return Pruned(name, sorted(numbers), mode="off")
        kept = set(numbers[:keep_last]) | aliased
        pruned = Pruned(name, sorted(kept & set(numbers)), mode=mode)
        note = (
            f"files removed by retention on {time.strftime('%Y-%m-%d', time.gmtime())} (kept: "
            f"champion, challenger and the last {keep_last} versions; SSDA_KEEP_VERSIONS)"
        )
        for number in sorted(set(numbers) - kept):
            freed = _prune_version(client, name, number, mode, note)
            if freed is not None:
                pruned.removed.append(number)
                pruned.freed_bytes += freed
        # The analyses need the champion's local copy only (ssda_assets.registry.versions.champion_model).
        champion_run = found.get(int(aliases[CHAMPION])) if CHAMPION in aliases else None
        for run_id in set(found.values()) - {champion_run, None}:
            pruned.freed_bytes += _remove_folder(cache / name / str(run_id))
        if pruned.removed:
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            client.set_registered_model_tag(name, TAG, f"{stamp}: {pruned.summary}")
        return pruned


def _remove_folder(folder: Path) -> int:
    """Delete a local folder; the bytes it held."""
    if not folder.is_dir():
        return 0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder, ignore_errors=True)
    return size


def _prune_version(client: MlflowClient, name: str, number: int, mode: str, note: str) -> int | None:
    """Remove one version's files (and records in `delete` mode); the bytes freed, None if skipped."""
    version = client.get_model_version(name, str(number))
    if version.aliases or (mode == "archive" and TAG in version.tags):
        return None
    run = client.get_run(version.run_id) if version.run_id else None
    if run is not None and run.info.status == "RUNNING":
        return None
    freed = _remove_files(client, client.get_model_version_download_uri(name, str(number)))
    if run is not None:
        freed += _remove_files(client, run.info.artifact_uri)
    model_id = (
        version.source.removeprefix("models:/") if (version.source or "").startswith("models:/m-") else None
    )
    if mode == "archive":
        client.set_model_version_tag(name, str(number), TAG, note)
        if run is not None:
            client.set_tag(run.info.run_id, TAG, note)
    else:
        client.delete_model_version(name, str(number))
        if run is not None:
            client.set_tag(run.info.run_id, TAG, f"model version {number} deleted; {note}")
            client.delete_run(run.info.run_id)
        if model_id:
            try:
                client.delete_logged_model(model_id)
            except MlflowException:
                pass  # its files are gone already; the record is what remains
    return freed
