"""A link from Dagster to an MLflow run, written while the MLflow UI ran on one port, still lands on
the run after a restart on another port (ssda_assets/operations/links.py, served by `make ui`)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from ssda_assets.operations.links import serve_links
from ssda_assets.operations.ui import _serve_links
from ssda_assets.resources import mlflow_from_env
from tests.helpers import free_port


class _StandIn(BaseHTTPRequestHandler):
    """An MLflow UI stand-in: its index page names the port it answers on."""

    def do_GET(self) -> None:  # noqa: N802
        body = f"mlflow ui on {self.server.server_port}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def mlflow_ui(port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def session(link_url: str, mlflow_port: int) -> list[ThreadingHTTPServer]:
    """What `make ui` runs for links: the MLflow UI on `mlflow_port` and the redirect to it."""
    ui = mlflow_ui(mlflow_port)
    return [ui, serve_links(link_url, f"http://127.0.0.1:{mlflow_port}")]


def test_a_link_written_under_one_port_resolves_after_a_restart_on_another(monkeypatch):
    link_url, first, second = f"http://127.0.0.1:{free_port()}", free_port(), free_port()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SSDA_MLFLOW_LINK_URL", link_url)
    monkeypatch.setenv("MLFLOW_PORT", str(first))
    link = mlflow_from_env().run_url("3", "abc123")  # what trained_model writes, under the first port
    assert link == f"{link_url}/#/experiments/3/runs/abc123"
    for port in (first, second):  # a restart of `make ui` on another MLflow port
        servers = session(link_url, port)
        try:
            followed = requests.get(link, timeout=10)
            assert followed.status_code == 200 and followed.text == f"mlflow ui on {port}"
            # the browser keeps the fragment, MLflow's route to the run, across the redirect
            assert followed.url == f"http://127.0.0.1:{port}/#/experiments/3/runs/abc123"
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()


def test_a_tracking_server_is_its_own_stable_address(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.lab:5000")
    monkeypatch.delenv("SSDA_MLFLOW_LINK_URL", raising=False)
    assert mlflow_from_env().run_url("1", "r") == "http://mlflow.lab:5000/#/experiments/1/runs/r"


def test_a_busy_link_address_is_a_warning_not_a_failure(capsys):
    busy = mlflow_ui(free_port())
    try:
        link_url = f"http://127.0.0.1:{busy.server_port}"
        assert _serve_links(link_url, "http://127.0.0.1:1", local=True) is None
        assert "SSDA_MLFLOW_LINK_URL" in capsys.readouterr().err
    finally:
        busy.shutdown()
        busy.server_close()
