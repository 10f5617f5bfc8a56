# The two set-up-and-run commands of the README (make demo, make test). Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo ui cli-demo test check lint docs install clean reset browser team-services team-up team-down

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list changes; torch==2.13.0 resolves to the CPU build on this disk.
# The team extra too, so that the team tests (tests/team/) run wherever make test does.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,docs,team]"
	touch $(STAMP)

install: $(STAMP)

HOME_DIR := $(CURDIR)/dagster_home
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
export DAGSTER_HOME ?= $(HOME_DIR)
export MLFLOW_PORT  # links from Dagster to MLflow name this port (make demo and make ui alike)

# The main job: generate the demo raw data if absent and materialize every asset of every partition
# into dagster_home (runs, DuckDB, MLflow), then print the trained models. Safe to run again.
demo: $(STAMP)
	$(BIN)/python -m ssda_assets.operations.pipeline --demo

# The Dagster UI (with the daemon: sensors, automation, schedule, run monitoring) and the MLflow UI
# over the same stores; Ctrl-C stops both and everything they started (ssda_assets/operations/ui.py).
ui: $(STAMP)
	exec $(BIN)/python -m ssda_assets.operations.ui --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT)

DEMO := demo_output

# The method alone through its command line, on the built-in synthetic pair.
cli-demo: $(STAMP)
	$(BIN)/python -c "from ssda_model.datasets import synthetic_pair; \
	  import pathlib; pathlib.Path('$(DEMO)').mkdir(exist_ok=True); s, t = synthetic_pair(); \
	  s.write_h5ad('$(DEMO)/source.h5ad'); t.write_h5ad('$(DEMO)/target.h5ad')"
	$(BIN)/ssda fit --source $(DEMO)/source.h5ad --target $(DEMO)/target.h5ad --out $(DEMO)/model
	$(BIN)/ssda predict --model $(DEMO)/model --input $(DEMO)/target.h5ad --out $(DEMO)/scored.h5ad

# Headless Chromium (Debian's package) for the browser test of the real UIs.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"

# Debian's PostgreSQL and Redis servers for the team mode (make team-up and tests/team/).
team-services:
	@(command -v redis-server >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null) \
	  || echo "warning: could not install postgresql and redis-server; the team tests will be skipped"

TEAM_DIR ?= /tmp/ssda4drug-team

# Team mode on this machine: Postgres, Redis, the MLflow server, two Celery workers and dagster dev on
# loopback, state under TEAM_DIR (ssda_assets/team/stack.py); make team-down stops them all.
team-up: $(STAMP) team-services
	$(BIN)/python -m ssda_assets.team.stack up --dir $(TEAM_DIR) --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT)

team-down: $(STAMP)
	$(BIN)/python -m ssda_assets.team.stack down --dir $(TEAM_DIR)

# The house rules, checked before the tests (and by pre-commit): ruff's lint and format, mypy on ssda_model.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The docs site (docs/, Sphinx + MyST) with warnings as errors: a broken link, a missing page or an API
# entry for something the code no longer has fails; the results tables are generated from bench/results/.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The inner loop, in under 3 minutes: lint, then the fast tier (tests under a second each, marked `fast`
# by tests/conftest.py); make test runs everything.
check: lint
	$(BIN)/python -m pytest -q -m fast

# Lint and the docs build, then the whole suite, then the tests that assert trained numbers (-m numerics)
# again with oneDNN and ATen capped at AVX2: a second family of CPU kernels wherever CI runs (docs/numerics.md).
test: lint docs browser team-services
	$(BIN)/python -m pytest -q
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(BIN)/python -m pytest -q -m numerics -p no:cacheprovider

clean:
	rm -rf $(VENV) $(DEMO)

# Forget every materialization, table, model and run of dagster_home (keeps dagster.yaml).
reset:
	find dagster_home -mindepth 1 -maxdepth 1 ! -name dagster.yaml -exec rm -rf {} +
