"""Links from Dagster to MLflow that keep working when the MLflow UI moves to another port.

A materialization's `mlflow_run` link is written once and never rewritten, so it names a stable
address, `SSDA_MLFLOW_LINK_URL`: with a tracking server, the server itself (its address is as stable
as the platform's MLFLOW_TRACKING_URI); with the local store, `http://127.0.0.1:5050`, where `make ui`
answers every request with a redirect to the same path on the MLflow UI it started, on whatever
port that is now. MLflow's UI routes in the URL's fragment (`/#/experiments/1/runs/…`), which a
browser keeps across a redirect that names none, so the link lands on the run.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost")


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(302)
        self.send_header("Location", self.server.target.rstrip("/") + self.path)  # type: ignore[attr-defined]
        self.send_header("Cache-Control", "no-store")  # the UI may move again
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: the UIs log enough
        pass


def serve_links(link_url: str, target: str) -> ThreadingHTTPServer | None:
    """Redirect every request to `link_url` (a loopback http address) to `target`, from a daemon
    thread of this process; None when `link_url` is not one this machine should serve or already
    is the target. An address already in use is an OSError for the caller to report."""
    parts = urlsplit(link_url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or parts.port is None:
        return None
    if link_url.rstrip("/") == target.rstrip("/"):
        return None
    server = ThreadingHTTPServer((parts.hostname, parts.port), _Redirect)
    server.target = target  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="mlflow-links", daemon=True).start()
    return server
