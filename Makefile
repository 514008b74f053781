# mnistlab — `make` lists the targets. Variables: DATASET, PROFILE, JOBS, SEED, FORCE, ONLY.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATASET ?= auto
PROFILE ?= quick
JOBS ?= 2
SEED ?= 42
NAME_ARGS = --dataset $(DATASET) --profile $(PROFILE)
RUN_ARGS = $(NAME_ARGS) --jobs $(JOBS) --seed $(SEED)
FORCE ?=
ONLY ?=
EXTRAS := report,lab,cluster,jax,dev

.PHONY: help setup system-deps data notebooks status report colab-check lint lab html test test-fast bench clean

help: ## show this list
	@echo "mnistlab: make <target> [DATASET=auto|mnist|mnist-sample|fashion|noisy-mnist] [PROFILE=smoke|quick|full] [JOBS=2] [SEED=42] [FORCE=1] [ONLY='05 07']"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "Output: DATASET=mnist PROFILE=full writes the committed study (reports/, figures/); any other run writes runs/DATASET-PROFILE/."

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "mnistlab needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

system-deps: ## install TeX, pandoc, poppler and Fashion-MNIST with apt-get when missing
	@bash scripts/install_system_deps.sh

setup: $(VENV)/.installed system-deps ## create .venv, install the package and the system packages

data: $(VENV)/.installed ## fetch and verify DATASET, print its source; FROM=DIR imports files you have
	$(PY) -m mnistlab data $(RUN_ARGS) $(if $(FROM),--import "$(FROM)")

notebooks: setup ## execute the stale notebooks in order with papermill (FORCE=1: all of them)
	$(PY) -m mnistlab run $(RUN_ARGS) $(if $(FORCE),--force) $(if $(ONLY),--only $(ONLY))

status: $(VENV)/.installed ## list each chapter as up to date or stale, and why
	$(PY) -m mnistlab status $(RUN_ARGS)

report: notebooks ## execute the notebooks, then write report.pdf and report.html (in runs/DATASET-PROFILE/reports/ unless mnist/full)
	$(PY) -m mnistlab report $(NAME_ARGS)

html: $(VENV)/.installed ## rebuild report.html only, from the executed notebooks of DATASET and PROFILE
	$(PY) -m mnistlab report $(NAME_ARGS) --no-pdf

test: setup ## run the test suite (unit tests, notebooks in the smoke profile, report checks)
	$(PY) -m pytest

test-fast: $(VENV)/.installed ## unit tests only (skips notebook execution and the PDF)
	$(PY) -m pytest -m "not slow"

colab-check: $(VENV)/.installed ## run every notebook in an emulated Colab runtime (Python 3.13, Colab's versions); checks the committed HEAD
	$(PY) scripts/colab/check.py

lint: $(VENV)/.installed ## ruff: lint and format check of src/, tests/, scripts/ and the notebooks
	$(VENV)/bin/ruff check src tests scripts notebooks
	$(VENV)/bin/ruff format --check src tests scripts notebooks

lab: $(VENV)/.installed ## open the notebooks in JupyterLab (the package is importable)
	$(VENV)/bin/jupyter lab notebooks

bench: setup ## time every notebook in PROFILE; write reports/bench.json
	$(PY) -m mnistlab bench $(RUN_ARGS)

clean: ## remove generated figures and caches (keeps .venv, the executed chapters and the report)
	rm -rf figures/*.png reports/executed.partial .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

.PHONY: gpu-kit
gpu-kit: ## download into .whl/ the wheels a GPU machine without internet lacks (then scripts/gpu/run.sh there; README, GPU)
	bash scripts/gpu/wheels.sh
