"""`models:/` URIs for `ssda predict`: a version of the MLflow model registry, loaded as the native
`SSDAModel` the platform logged inside it. `ssda predict` finds `load_registered` through the
entry point pyproject.toml declares, so the method package never imports the platform.

A registered version is an MLflow pyfunc model whose `ssda_model` artifact is the folder
`SSDAModel.save` wrote (`ssda_assets.registry.training_run`), so scoring it is scoring that folder. MLflow
is imported inside the functions: `ssda predict` on a folder does not load it. Which store
is asked is MLflow's own rule (`--tracking-uri`, else MLFLOW_REGISTRY_URI / MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ssda_model.errors import SSDAInputError
from ssda_model.model import SSDAModel

SCHEME = "models:/"
FORMS = "models:/<name>@<alias> or models:/<name>/<version>"
NATIVE_ARTIFACT = "ssda_model"  # the pyfunc artifact of the native folder (ssda_assets.registry.versions)
RETENTION_TAG = "ssda_retention"  # on a version retention removed the files of (registry.retention)
_LISTED = 10  # names or versions an error lists
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class RegisteredVersion:
    """The registry version a `models:/` URI named when it was read: aliases move, these do not."""

    name: str
    version: int
    run_id: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.name}/{self.version}"


def load_registered(uri: str, tracking_uri: str | None = None) -> tuple[SSDAModel, RegisteredVersion]:
    """The native model of the registry version `uri` names (see `FORMS`), and which version it was.

    A malformed URI, a registry that does not exist or cannot be reached, an unknown model name, a
    missing alias or version, or a version that is not an ssda4drug model is an `SSDAInputError`
    naming the URI and what was expected.
    """
    match = _URI.match(uri)
    if match is None:
        raise SSDAInputError(uri, f"not a registry model URI; expected {FORMS}")
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    registry = tracking_uri or mlflow.get_registry_uri()
    _check_store_exists(uri, registry)
    client = MlflowClient(tracking_uri=tracking_uri or mlflow.get_tracking_uri(), registry_uri=registry)
    name, alias, number = match["name"], match["alias"], match["version"]
    try:
        version = _resolve(client, uri, registry, name, alias, number)
        source = client.get_model_version_download_uri(name, version.version)
    except MlflowException as exc:
        raise SSDAInputError(uri, f"cannot read the model registry {registry} ({_first_line(exc)})") from None
    found = RegisteredVersion(name, int(version.version), version.run_id or "")
    if RETENTION_TAG in (version.tags or {}):
        raise SSDAInputError(uri, f"version {found.version} of {name!r}: {version.tags[RETENTION_TAG]}")
    with tempfile.TemporaryDirectory(prefix="ssda-registry-") as scratch:
        try:
            folder = _download_native(source, Path(scratch), tracking_uri)
        except (MlflowException, OSError) as exc:
            raise SSDAInputError(
                uri, f"cannot download version {found.version} of {name!r} from {source} ({_first_line(exc)})"
            ) from None
        if folder is None:
            raise SSDAInputError(
                uri,
                f"version {found.version} of {name!r} is not an ssda4drug model: its MLmodel has no "
                f"pyfunc artifact {NATIVE_ARTIFACT!r}",
            )
        return SSDAModel.load(folder), found  # read whole into memory: the scratch copy can go


def _check_store_exists(uri: str, registry: str) -> None:
    """A sqlite registry must already exist: MLflow would create an empty one (and its folders)."""
    if registry.startswith("sqlite:///"):
        database = Path(registry.removeprefix("sqlite:///").split("?", 1)[0])
        if not database.is_file():
            raise SSDAInputError(
                uri,
                f"the model registry {registry} does not exist; expected the store the platform "
                "trains into: set MLFLOW_TRACKING_URI or pass --tracking-uri",
            )


def _resolve(client, uri: str, registry: str, name: str, alias: str | None, number: str | None):
    """The model version `name@alias` or `name/number` names, or an error listing what exists."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = [m.name for m in client.search_registered_models(max_results=_LISTED + 1)]
        raise SSDAInputError(
            uri, f"no registered model named {name!r} in {registry}; it holds: {_listing(known)}"
        ) from None
    if alias is not None:
        aliases = registered.aliases or {}
        if alias not in aliases:
            held = ", ".join(f"{a} → v{v}" for a, v in sorted(aliases.items())) or "none"
            raise SSDAInputError(uri, f"model {name!r} has no alias {alias!r}; its aliases: {held}")
        return client.get_model_version(name, str(aliases[alias]))
    try:
        return client.get_model_version(name, number)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        quoted = name.replace("'", "\\'")
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{quoted}'"))
        raise SSDAInputError(
            uri, f"model {name!r} has no version {number}; its versions: {_listing(versions)}"
        ) from None


def _download_native(source: str, scratch: Path, tracking_uri: str | None) -> Path | None:
    """Download only the artifact folder the version's MLmodel names as the native model."""
    import mlflow

    location = native_location(source, scratch / "meta", tracking_uri)
    if location is None:
        return None
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(scratch / "model"), tracking_uri=tracking_uri
        )
    )


def native_location(source: str, scratch: Path, tracking_uri: str | None) -> str | None:
    """The artifact URI of the native model folder inside the logged model at `source` (a version's
    download URI), read from its MLmodel (downloaded into `scratch`); None for another kind of model.
    The weights are stored there once: the training's run does not keep a second copy."""
    import mlflow
    from mlflow.models import Model

    described = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=str(scratch), tracking_uri=tracking_uri
    )
    artifacts = Model.load(described).flavors.get("python_function", {}).get("artifacts") or {}
    if NATIVE_ARTIFACT not in artifacts:
        return None
    return f"{source.rstrip('/')}/{artifacts[NATIVE_ARTIFACT]['path']}"


def _listing(items: list) -> str:
    """At most `_LISTED` names or numbers for a one-line message."""
    shown = ", ".join(map(str, items[:_LISTED])) or "none"
    return shown + (", …" if len(items) > _LISTED else "")


def _first_line(exc: BaseException) -> str:
    """MLflow's messages can run to pages (a whole request); the command prints one line."""
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
