"""The real UIs in a headless browser: the Dagster webserver shows the materialized assets and the
MLflow UI shows the registered models that the pipeline produced."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ssda_assets.operations.pipeline import run_pipeline
from tests.helpers import free_port, wait_for
from tests.platform_helpers import make_platform

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (make test installs it)"
)
BIN = Path(sys.executable).parent


def rendered(url: str, tmp: Path) -> str:
    """The DOM after the page's JavaScript ran, from headless Chromium."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'chrome'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    home = tmp_path_factory.mktemp("uihome")
    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(home, monkeypatch)
        summary, failures = run_pipeline(platform.instance, {"epochs": 1, "repetitions": 1})
        assert failures == []
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        dagster_port, mlflow_port = free_port(), free_port()
        root = Path(__file__).resolve().parents[1]
        processes = [
            subprocess.Popen(
                [
                    str(BIN / "dagster-webserver"),
                    "-w",
                    str(root / "workspace.yaml"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(dagster_port),
                ],
                env=env,
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    str(BIN / "mlflow"),
                    "ui",
                    "--backend-store-uri",
                    platform.mlflow.tracking_uri,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            wait_for(f"http://127.0.0.1:{dagster_port}/server_info")
            wait_for(f"http://127.0.0.1:{mlflow_port}/health")
            yield {
                "dagster": f"http://127.0.0.1:{dagster_port}",
                "mlflow": f"http://127.0.0.1:{mlflow_port}",
                "home": home,
                "summary": summary,
            }
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


def test_dagster_ui_shows_the_trained_model_asset(servers, tmp_path):
    dom = rendered(f"{servers['dagster']}/assets/trained_model", tmp_path)
    assert "trained_model" in dom
    assert "Materialized" in dom or "materialized" in dom


def test_mlflow_ui_lists_the_registered_models(servers, tmp_path):
    dom = rendered(f"{servers['mlflow']}/#/models", tmp_path)
    for model in servers["summary"]["model"]:
        assert model in dom
