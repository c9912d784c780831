# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR := /usr/share/datasets/fashion-mnist
PORT ?= 8501

.PHONY: run test check lint data bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

# Makes sure Fashion-MNIST is on disk, or says exactly how to get it.
data: $(VENV)/.installed
	@$(BIN)/python -m fmnist_core data --check || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian package dataset-fashion-mnist..."; \
	    (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) \
	      && $(BIN)/python -m fmnist_core data --check; \
	  else exit 1; fi; }

run: $(VENV)/.installed data
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# The whole suite, as CI runs it: unit tests plus the realdata, slow and browser ones.
test: $(VENV)/.installed-dev data
	$(BIN)/python -m pytest

# The fast inner loop: lint, formatting, and the unmarked unit tests (tiny synthetic data, no real dataset, no
# subprocess, no browser; tests/conftest.py fails an unmarked test that starts a process or reads the real data).
# One pytest worker per core (at most 4): the unit tests are CPU-bound and independent of each other.
check: lint
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 -m "not slow and not realdata and not browser"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed data
	$(BIN)/python -m fmnist_core bench

# Regenerates docs/screenshots/*.png from the app running on the real cache.
screenshots: $(VENV)/.installed-dev
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
