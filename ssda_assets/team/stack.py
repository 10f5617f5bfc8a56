"""The team stack on one machine: PostgreSQL, Redis, the MLflow tracking server, Celery workers and
(optionally) dagster dev, each on a loopback port, with all their state under one folder.

    python -m ssda_assets.team.stack up [--dir /tmp/ssda4drug-team] [--dagster-port 3000] [--mlflow-port 5000]
    python -m ssda_assets.team.stack down [--dir /tmp/ssda4drug-team]

`up` starts each service in its own session, waits until it answers, records its PID under
`pids/` and writes `team.env` (the variables that point a shell at the stack); `down` stops them in
reverse order, then kills whatever is left. The servers are Debian's `postgresql` and
`redis-server` (`make team-services` installs them); PostgreSQL refuses to run as root, so as root
it runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from ssda_assets.operations.ui import dagster_dev, process_tree
from ssda_assets.settings import PROJECT_ROOT, team_dir
from ssda_assets.team import MODE, TEAM
from ssda_assets.team.executor import BACKEND, BROKER, GPU

INSTANCE_YAML = PROJECT_ROOT / "deploy" / "team" / "dagster.yaml"
PG_USER, DATABASES = "ssda", ("dagster", "mlflow")
STOP_ORDER = ["dagster", "worker", "mlflow", "redis", "postgres"]  # users of a service stop before it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary(name: str) -> str | None:
    """A server program on PATH, or in Debian's versioned PostgreSQL folder (not on PATH)."""
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    return shutil.which(name) or (versions[-1] if versions else None)


def missing_servers() -> str | None:
    """Why the stack cannot start here, or None."""
    missing = [name for name in ("initdb", "postgres", "redis-server") if server_binary(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not found: `make team-services` installs Debian's postgresql "
            "and redis-server"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no `postgres` user to run PostgreSQL as"
    return None


@dataclass
class Ports:
    postgres: int
    redis: int
    mlflow: int
    dagster: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


class TeamStack:
    """The services of the team mode, their environment and their lifetime."""

    def __init__(self, folder: Path, ports: Ports, workers: int = 2, dagster: bool = True) -> None:
        self.folder, self.ports, self.workers, self.dagster = folder.resolve(), ports, workers, dagster
        self.home = self.folder / "dagster_home"

    def pg_url(self, database: str, driver: str = "+psycopg2") -> str:
        """SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; we ship psycopg2."""
        return f"postgresql{driver}://{PG_USER}@127.0.0.1:{self.ports.postgres}/{database}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    def env(self) -> dict[str, str]:
        """What every process of the team mode is given: the Dagster instance in Postgres, the
        Celery broker and result backend, the MLflow server (artifacts through it) and the
        registry's lock in MLflow's Postgres database."""
        redis = f"redis://127.0.0.1:{self.ports.redis}"
        return {
            MODE: TEAM,
            "DAGSTER_HOME": str(self.home),
            "SSDA_DAGSTER_PG_URL": self.pg_url("dagster"),
            BROKER: f"{redis}/0",
            BACKEND: f"{redis}/1",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "SSDA_MLFLOW_UI_URL": self.mlflow_url,
            "SSDA_MLFLOW_ARTIFACTS": "mlflow-artifacts:///",  # no host: the tracking server's own store
            "SSDA_REGISTRY_LOCK": self.pg_url("mlflow"),
            "SSDA_WAREHOUSE_LOCK_WAIT_S": "120",
        }

    # -- starting ---------------------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str], user: str | None = None) -> subprocess.Popen:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        (self.folder / "pids").mkdir(exist_ok=True)
        with (self.folder / "logs" / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env()},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user,
            )
        (self.folder / "pids" / f"{name}.pid").write_text(str(process.pid))
        return process

    def _wait(self, name: str, process: subprocess.Popen, ready, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; see {self.folder}/logs/{name}.log"
                )
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet, whatever the client says
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{name} did not answer within {seconds:.0f} s; see {self.folder}/logs/{name}.log")

    def _start_postgres(self) -> None:
        data = self.folder / "postgres"
        user = "postgres" if os.geteuid() == 0 else None
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(data, user, user)
            subprocess.run(
                [server_binary("initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"],
                check=True,
                capture_output=True,
                user=user,
            )
        process = self._spawn(
            "postgres",
            [
                server_binary("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.ports.postgres),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ],
            user=user,
        )
        import psycopg2

        self._wait(
            "postgres", process, lambda: psycopg2.connect(self.pg_url("postgres", driver="")).close() is None
        )
        connection = psycopg2.connect(self.pg_url("postgres", driver=""))
        connection.autocommit = True
        with connection.cursor() as cursor:
            for database in DATABASES:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()

    def _start_redis(self) -> None:
        (self.folder / "redis").mkdir(parents=True, exist_ok=True)
        process = self._spawn(
            "redis",
            [
                server_binary("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports.redis),
                "--dir",
                str(self.folder / "redis"),
                "--save",
                "",
            ],
        )
        import redis

        self._wait("redis", process, lambda: redis.Redis(port=self.ports.redis).ping())

    def _start_mlflow(self) -> None:
        process = self._spawn(
            "mlflow",
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.pg_url("mlflow"),
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.folder / "mlartifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.mlflow),
                "--workers",
                "1",
            ],
        )
        self._wait(
            "mlflow", process, lambda: requests.get(f"{self.mlflow_url}/health", timeout=2).ok, seconds=180
        )

    def worker_names(self) -> list[str]:
        return [f"worker{i}@{socket.gethostname()}" for i in range(1, self.workers + 1)]

    def _start_workers(self) -> None:
        processes = {
            name: self._spawn(
                name.split("@")[0],
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "ssda_assets.team.worker",
                    "worker",
                    "-Q",
                    f"{GPU},dagster",
                    "--concurrency",
                    "1",
                    "--prefetch-multiplier",
                    "1",
                    "-n",
                    name,
                    "--loglevel",
                    "INFO",
                ],
            )
            for name in self.worker_names()
        }
        from celery import Celery

        app = Celery(broker=self.env()[BROKER])
        for name, process in processes.items():
            self._wait(name, process, lambda name=name: app.control.ping(destination=[name], timeout=1.0))

    def _start_dagster(self) -> None:
        process = self._spawn(
            "dagster",
            dagster_dev(self.ports.dagster),
        )
        self._wait(
            "dagster",
            process,
            lambda: requests.get(f"http://127.0.0.1:{self.ports.dagster}/server_info", timeout=2).ok,
            seconds=300,
        )

    def start(self) -> None:
        """Start every service, each once the one it needs answers; on failure stop those started."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # PostgreSQL runs as its own user below this folder
        self.home.mkdir(exist_ok=True)
        shutil.copy(INSTANCE_YAML, self.home / "dagster.yaml")
        (self.folder / "team.env").write_text("".join(f"export {k}={v}\n" for k, v in self.env().items()))
        try:
            self._start_postgres()
            self._start_redis()
            self._start_mlflow()
            self._start_workers()
            if self.dagster:
                self._start_dagster()
        except BaseException:
            self.stop()
            raise

    # -- stopping ---------------------------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to each service's process group (SIGINT to PostgreSQL and dagster dev: their quick
        shutdown), users first; after `grace` seconds, SIGKILL to whatever they started that is alive."""
        pids = {path.stem: int(path.read_text()) for path in (self.folder / "pids").glob("*.pid")}
        for kind in STOP_ORDER:
            members = []
            for name, pid in pids.items():
                if name.startswith(kind):
                    members += process_tree(pid)
                    _signal_group(pid, signal.SIGINT if kind in ("postgres", "dagster") else signal.SIGTERM)
            _, alive = psutil.wait_procs(members, timeout=grace)
            for process in alive:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            for name, pid in pids.items():
                if name.startswith(kind):
                    _signal_group(pid, signal.SIGKILL)
                    (self.folder / "pids" / f"{name}.pid").unlink(missing_ok=True)


def _signal_group(pid: int, number: int) -> None:
    try:
        os.killpg(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssda_assets.team.stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument("action", choices=["up", "down"], help="start the team stack, or stop it")
    parser.add_argument(
        "--dir",
        type=Path,
        default=team_dir(),
        help="folder of the stack's state (default: SSDA_TEAM_DIR or /tmp/ssda4drug-team)",
    )
    parser.add_argument(
        "--dagster-port", type=int, default=3000, help="port of the Dagster UI (default: 3000)"
    )
    parser.add_argument(
        "--mlflow-port", type=int, default=5000, help="port of the MLflow server (default: 5000)"
    )
    args = parser.parse_args()
    stack = TeamStack(args.dir, Ports(free_port(), free_port(), args.mlflow_port, args.dagster_port))
    if args.action == "down":
        stack.stop()
        print(f"team stack in {stack.folder} stopped")
        return 0
    reason = missing_servers()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    stack.start()
    print(
        f"Dagster UI: http://127.0.0.1:{args.dagster_port}    MLflow: {stack.mlflow_url}    "
        f"workers: {', '.join(stack.worker_names())}\n"
        f"state and logs: {stack.folder}    this shell: source {stack.folder}/team.env    "
        "stop: make team-down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
