# One-step set-up: every target installs what is missing first, and re-running is cheap.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := dataset-fashion-mnist chromium
export OMP_NUM_THREADS ?= 2

.PHONY: all demo test lint bench docs system-deps install device-models netlists e2e clean

all: test

# Debian packages: dataset-fashion-mnist (IDX files), chromium (the report's browser test,
# headless); installed only when something is missing. Then ngspice compiled with KLU and
# libngspice.so for PySpice (.ci/install-ngspice.sh: kept if there; on Debian 12, ngspice 46
# from bookworm-backports, as bookworm's 39 has no KLU; it stops with what to do otherwise).
system-deps:
	@missing=0; \
	command -v chromium >/dev/null || missing=1; \
	[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing=1; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing=1; \
	if [ $$missing = 1 ]; then \
		echo "installing Debian packages: $(APT_PKGS) python3-venv"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PKGS) python3-venv python3-dev >/dev/null; \
	fi
	@bash .ci/install-ngspice.sh

$(STAMP): setup.cfg pyproject.toml | system-deps
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: system-deps $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/pytest -q

demo: install
	bash examples/demo.sh

# The documentation site into site/ (mkdocs.yml): docs/benchmarks.md rendered from benchmarks/results/*.json first.
docs: install
	$(BIN)/python docs/render_benchmarks.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

bench: install
	cd benchmarks && ../$(BIN)/python run_all.py

# Refit the bundled device models from the raw sweeps shipped in device_models/sweeps/ (not needed to use anasim).
device-models: install
	$(BIN)/python -m anasim.devices.bundled device_models/sweeps/cmtd_dft_negf

# The ngspice and Verilog-A device libraries (.lib, .va: what 'anasim devices export -o netlists/devices' writes for the bundled devices) and the golden example circuits in netlists/ (committed: a change
# to them is deliberate and shows in review). Checkpoints of the examples are trained only if missing.
netlists: install
	$(BIN)/python -m anasim.library netlists

# The end-to-end pipeline CI runs after the tests: train, compile, simulate, Monte Carlo, report with gates.
e2e: install
	bash .ci/e2e.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache site
