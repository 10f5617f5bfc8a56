# The two set-up-and-run commands of the README. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list changes; torch==2.13.0 resolves to the CPU build on this disk.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

DEMO := demo_output

# The main job on the built-in synthetic pair: write it, fit (5 repetitions, 3-shot), score the cells.
demo: $(STAMP)
	$(BIN)/python -c "from ssda_model.datasets import synthetic_pair; \
	  import pathlib; pathlib.Path('$(DEMO)').mkdir(exist_ok=True); s, t = synthetic_pair(); \
	  s.write_h5ad('$(DEMO)/source.h5ad'); t.write_h5ad('$(DEMO)/target.h5ad')"
	$(BIN)/ssda fit --source $(DEMO)/source.h5ad --target $(DEMO)/target.h5ad --out $(DEMO)/model
	$(BIN)/ssda predict --model $(DEMO)/model --input $(DEMO)/target.h5ad --out $(DEMO)/scored.h5ad

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO)
