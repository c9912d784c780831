# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR := /usr/share/datasets/fashion-mnist
PORT ?= 8501
# Debian's Chromium and its driver, for the browser tests (the variables let tests/test_makefile.py stand in).
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= chromedriver
APT_GET ?= apt-get
BROWSER_PACKAGES := chromium chromium-driver
# axe-core, the accessibility checker the browser tests run in each page (devtools/accessibility.py finds it).
AXE_CORE_VERSION := 4.14.1
AXE_SCRIPT := devtools/axe/node_modules/axe-core/axe.min.js

.PHONY: run test check lint data browser axe models bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# The project itself is installed in editable mode (`fmnist` on the PATH of the venv; fmnist_core, fmnist_app and
# devtools importable from benchmarks/ and scripts/ run as files); its dependencies are requirements.txt.
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
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

# Makes sure Chromium and its driver are installed for the browser tests: installs them with apt-get when run as
# root, else stops with one line saying what to install (never a pile of failing tests).
browser:
	@[ -x "$(CHROMIUM)" ] && command -v "$(CHROMEDRIVER)" >/dev/null && exit 0; \
	if [ "$$(id -u)" = "0" ] && command -v "$(APT_GET)" >/dev/null; then \
	  echo "Installing Debian packages $(BROWSER_PACKAGES) for the browser tests..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  "$(APT_GET)" install -y -q $(BROWSER_PACKAGES) || { "$(APT_GET)" update -q && "$(APT_GET)" install -y -q $(BROWSER_PACKAGES); }; \
	  [ -x "$(CHROMIUM)" ] && command -v "$(CHROMEDRIVER)" >/dev/null && exit 0; \
	fi; \
	echo "make test needs Chromium and its driver for the browser tests: sudo apt-get install $(BROWSER_PACKAGES)" >&2; \
	exit 1

# Installs axe-core from npm for the browser tests' accessibility check, once; says what to install without npm.
axe:
	@[ -f "$(AXE_SCRIPT)" ] && exit 0; \
	command -v npm >/dev/null || { echo "make test needs npm for the accessibility check: sudo apt-get install npm" >&2; exit 1; }; \
	npm install --no-save --no-audit --no-fund --prefix devtools/axe axe-core@$(AXE_CORE_VERSION)

run: $(VENV)/.installed data
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# The whole suite, as CI runs it: lint and formatting, then unit tests plus the realdata, slow and browser ones.
# Two pytest workers: much of the suite waits (browsers, servers, lane and worker processes) rather than computes,
# and no test asserts a speed (speed targets live in benchmarks/). The 25 slowest tests are listed at the end.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev data browser axe lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=25

# The fast inner loop: lint, formatting, and the unmarked unit tests (tiny synthetic data, no real dataset, no
# subprocess, no browser; tests/conftest.py fails an unmarked test that starts a process or reads the real data).
# One pytest worker per core (at most 4): the unit tests are CPU-bound and independent of each other.
check: lint
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 -m "not slow and not realdata and not browser"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Retrains the models shipped in cached_models/ (Model 1, 2, 3 on the full preset, default seed) through the CLI
# and installs them there with their meta.json. Minutes to an hour on a 2-core CPU; see scripts/ship_models.py.
models: $(VENV)/.installed data
	$(BIN)/python scripts/ship_models.py

bench: $(VENV)/.installed data
	$(BIN)/python -m fmnist_core bench

# Regenerates docs/screenshots/*.png from the app running on the real cache.
screenshots: $(VENV)/.installed-dev
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
