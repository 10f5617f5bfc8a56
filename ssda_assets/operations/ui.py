"""`make ui`: the Dagster UI (webserver, daemon, code server) and the MLflow UI over the same stores,
started together and stopped together.

    python -m ssda_assets.operations.ui [--dagster-port 3000] [--mlflow-port 5000]

Each UI runs in its own process group, so a Ctrl-C in the terminal reaches this supervisor only;
it then asks both to stop (SIGINT to Dagster, which shuts its daemon and code server down; SIGTERM
to MLflow), and after a grace period kills whatever they started that is still alive, so no
process outlives it. Dagster's links to MLflow name SSDA_MLFLOW_LINK_URL (default
http://127.0.0.1:5050), which this process redirects to the MLflow UI's port of the day
(`ssda_assets.operations.links`), so links written under another port keep working.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil

from ssda_assets.operations.links import serve_links
from ssda_assets.resources import mlflow_from_env
from ssda_assets.settings import PROJECT_ROOT, dagster_home, dagster_port, mlflow_port

GRACE_SECONDS = 6.0


def _local(tracking_uri: str) -> bool:
    """A local store gets its own MLflow UI here; a team's tracking server is its own UI."""
    return tracking_uri.startswith("sqlite:")


def dagster_dev(port: int) -> list[str]:
    """`dagster dev` (webserver, daemon, code server) of this project on loopback."""
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]


def _commands(dagster_port: int, mlflow_port: int) -> dict[str, list[str]]:
    tracking = mlflow_from_env()
    commands = {"dagster": dagster_dev(dagster_port)}
    if _local(tracking.tracking_uri):
        commands["mlflow"] = [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            tracking.tracking_uri,
            "--default-artifact-root",
            tracking.artifact_root,
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
        ]
    return commands


def _environment(name: str) -> dict[str, str]:
    """The UI's environment. MLflow's UI starts a job runner and about eight job consumers by
    default, for its GenAI jobs (scorers, trace rollups) that this platform does not use: on two
    cores their start-up burst of imports slows both UIs and delays a stop past its grace
    period. They stay off unless the user's environment turns them on."""
    env = dict(os.environ)
    if name == "mlflow":
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants alive now (none if it has ended)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop(processes: dict[str, subprocess.Popen], grace: float = GRACE_SECONDS) -> None:
    """Ask each UI to stop, wait up to `grace` seconds, then kill every process they started."""
    members = [p for process in processes.values() for p in process_tree(process.pid)]
    for name, process in processes.items():
        try:
            os.killpg(process.pid, signal.SIGINT if name == "dagster" else signal.SIGTERM)
        except ProcessLookupError:
            pass
    _, alive = psutil.wait_procs(members, timeout=grace)
    for process in processes.values():  # the groups catch children started after `members` was taken
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=2)
    for process in processes.values():
        process.wait()


def _serve_links(link_url: str, ui_url: str, local: bool):
    """The redirect from the links' stable address to this MLflow UI; a busy address is a warning."""
    if not local:
        return None
    try:
        return serve_links(link_url, ui_url)
    except OSError as exc:
        print(
            f"warning: links to MLflow ({link_url}, SSDA_MLFLOW_LINK_URL) are not served: {exc.strerror}",
            file=sys.stderr,
        )
        return None


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssda_assets.operations.ui", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--dagster-port",
        type=int,
        default=dagster_port(),
        help="port of the Dagster UI (default: DAGSTER_PORT or 3000)",
    )
    parser.add_argument(
        "--mlflow-port",
        type=int,
        default=mlflow_port(),
        help="port of the MLflow UI (default: MLFLOW_PORT or 5000)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    tracking = mlflow_from_env()
    # Inherited by the code server and every run it launches: links follow the port used here.
    ui_url = f"http://127.0.0.1:{args.mlflow_port}" if _local(tracking.tracking_uri) else tracking.ui_url
    os.environ["SSDA_MLFLOW_UI_URL"] = ui_url
    links = _serve_links(tracking.link_url, ui_url, _local(tracking.tracking_uri))
    stopping: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda signum, _frame: stopping.append(signum))
    processes = {
        name: subprocess.Popen(command, cwd=PROJECT_ROOT, env=_environment(name), start_new_session=True)
        for name, command in _commands(args.dagster_port, args.mlflow_port).items()
    }
    print(
        f"Dagster UI: http://127.0.0.1:{args.dagster_port}    "
        f"MLflow UI: {ui_url}"
        f"{f' (links via {tracking.link_url})' if links is not None else ''}    "
        "(Ctrl-C stops both)",
        flush=True,
    )
    while not stopping and all(p.poll() is None for p in processes.values()):
        time.sleep(0.2)
    ended = [name for name, p in processes.items() if p.poll() is not None]
    stop(processes)
    if links is not None:
        links.shutdown()
    if ended and not stopping:
        print(f"{', '.join(ended)} stopped by itself; stopped the rest", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
