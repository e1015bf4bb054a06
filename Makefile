# peftbench — the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLUSTER ?= local
SWEEP ?= configs/sweeps/demo.yaml
# Where torch comes from. On these CPU machines pip takes the local +cpu wheel; elsewhere point it
# at a CPU or CUDA index, e.g. TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.DEFAULT_GOAL := help
.PHONY: help setup demo sweep collect test test-all lint lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock requirements-torch.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23.2"
	$(PY) -m pip install -q $(TORCH_INDEX) -r requirements-torch.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

setup: $(VENV)/.installed ## create .venv from requirements.lock (torch first, see requirements-torch.txt)

demo: sweep ## the demo sweep on this machine (same as `make sweep` with no arguments)

sweep: $(VENV)/.installed ## run SWEEP on CLUSTER (default: the demo, locally) and print the table
	$(VENV)/bin/peftbench sweep $(SWEEP) --cluster $(CLUSTER)

collect: $(VENV)/.installed ## merge SWEEP's results into results.parquet/.csv and a table
	$(VENV)/bin/peftbench collect $(SWEEP)

test: $(VENV)/.installed ## the test suite (CPU, offline; what CI runs)
	$(PY) -m pytest

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check src tests scripts

lock: ## regenerate requirements.lock (hashes; torch pinned apart in requirements-torch.txt)
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q pip-tools
	.lock-venv/bin/pip-compile --quiet --generate-hashes --unsafe-package torch \
		--extra test --strip-extras --no-emit-index-url --no-emit-find-links \
		-c requirements-torch.txt -o requirements.lock pyproject.toml

clean: ## remove .venv and the demo's run folders
	rm -rf $(VENV) runs/demo
