# `make demo` and `make test` work from a fresh clone: they create .venv, install the package
# (building the JupyterLab frontend with the jlpm that jupyterlab ships) and run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The hub tests start JupyterHub, which runs configurable-http-proxy (npm) by name.
HUB_TOOLS := .hub-tools
CHP_VERSION ?= 5.3.0
CHP := $(HUB_TOOLS)/node_modules/.bin/configurable-http-proxy
# the frontend build calls jlpm and jupyter-builder by name
export PATH := $(abspath $(BIN)):$(abspath $(HUB_TOOLS)/node_modules/.bin):$(PATH)
# Node.js trusts only its own list of CAs; npm then refuses a registry (or a proxy in front of
# it) whose chain ends at a CA only the system trusts. Trust the system's bundle too.
SYSTEM_CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt
ifneq ($(wildcard $(SYSTEM_CA_BUNDLE)),)
export NODE_EXTRA_CA_CERTS ?= $(SYSTEM_CA_BUNDLE)
endif

.PHONY: setup test test-slow test-python demo bench dist lint format clean

$(STAMP): pyproject.toml package.json yarn.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# A venv set up before links share/jupyter/labextensions/jupyter-gitsync to the source
	@# folder (labextension develop); an editable install would copy install.json through that
	@# link into jupyter_gitsync/labextension, and the wheel would then hold it twice.
	rm -f $(VENV)/share/jupyter/labextensions/jupyter-gitsync
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	$(BIN)/jlpm install
	$(BIN)/jupyter labextension develop --overwrite .
	$(BIN)/jupyter server extension enable --sys-prefix jupyter_gitsync
	touch $@

setup: $(STAMP) $(CHP)

$(CHP): Makefile
	npm install --prefix $(HUB_TOOLS) --no-save --no-package-lock --no-audit --no-fund \
		configurable-http-proxy@$(CHP_VERSION)
	touch $@

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Browser tests (tests/e2e) drive Debian's chromium; Playwright's own browser downloads are
# never used. Installed here, as root (or through sudo), when it is missing.
CHROMIUM ?= /usr/bin/chromium
test: $(CHROMIUM)
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The fault tests of "Never lose work" repeated 20 times (`make test` runs them twice), with
# their numbers (trials, saves made, saves found on the remote) printed as they finish.
FAULT_TRIALS ?= 20
test-slow: setup
	GITSYNC_FAULT_TRIALS=$(FAULT_TRIALS) $(BIN)/python -m pytest -s --durations=0 $(PYTEST_ARGS) \
		tests/test_faults.py tests/test_server_process.py

demo: setup
	$(BIN)/python scripts/demo.py

# Benchmarks read peak memory with GNU time (Debian's `time` package).
GNU_TIME ?= /usr/bin/time
bench: setup $(GNU_TIME)
	$(BIN)/python -m benchmarks
$(GNU_TIME):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time

# The sdist and the wheel a release publishes (the wheel carries the production build of the
# frontend, so installing it needs no Node.js); twine checks the metadata PyPI will show.
dist: setup
	rm -rf dist
	$(BIN)/jlpm build:prod
	$(BIN)/python -m build
	$(BIN)/python -m twine check --strict dist/*

lint: setup
	$(BIN)/ruff check jupyter_gitsync tests scripts
	$(BIN)/ruff format --check jupyter_gitsync tests scripts
	$(BIN)/mypy
	$(BIN)/jlpm lint:check

format: setup
	$(BIN)/ruff format jupyter_gitsync tests scripts
	$(BIN)/ruff check --fix jupyter_gitsync tests scripts
	$(BIN)/jlpm lint

clean:
	rm -rf $(VENV) node_modules $(HUB_TOOLS) lib jupyter_gitsync/labextension .demo tsconfig.tsbuildinfo
