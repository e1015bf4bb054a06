# peftbench — the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLUSTER ?= local
SWEEP ?= configs/sweeps/demo.yaml
# Where torch comes from. On these CPU machines pip takes the local +cpu wheel; elsewhere point it
# at a CPU or CUDA index (a URL or pip options), e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.DEFAULT_GOAL := help
.PHONY: help setup demo sweep status resubmit slurm-up slurm-down collect test test-all lint lock sif clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i] }'

# scripts/install.sh is the one install path (the .sif's %post runs it too): torch first, then the
# hashed lock, then peftbench (editable), then pip check.
$(VENV)/.installed: requirements.lock requirements-torch.txt pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) TORCH_INDEX='$(TORCH_INDEX)' scripts/install.sh $(VENV)
	touch $@

setup: $(VENV)/.installed ## create .venv from requirements.lock (torch first, see requirements-torch.txt)

demo: sweep ## the demo sweep on this machine (same as `make sweep` with no arguments)

sweep: $(VENV)/.installed ## run SWEEP on CLUSTER (default: the demo, locally) and print the table
	$(VENV)/bin/peftbench sweep $(SWEEP) --cluster $(CLUSTER)

status: $(VENV)/.installed ## where each run of SWEEP on CLUSTER stands (BY=method,task to group)
	$(VENV)/bin/peftbench status $(SWEEP) --cluster $(CLUSTER) $(if $(BY),--by $(BY))

resubmit: $(VENV)/.installed ## run again the runs of SWEEP with no success result that are not queued
	$(VENV)/bin/peftbench resubmit $(SWEEP) --cluster $(CLUSTER)

slurm-up: ## start the one-node localhost Slurm cluster (root, Debian) for CLUSTER=dev and the slurm tests
	bash slurm/local_up.sh

slurm-down: ## stop exactly the daemons slurm-up started
	bash slurm/local_down.sh

.PHONY: slurm-up-twonode slurm-down-twonode
slurm-up-twonode: ## start the two-node localhost Slurm cluster (network namespaces; root) for CLUSTER=dev2
	bash slurm/local_up_2node.sh

slurm-down-twonode: ## stop it and remove its namespaces (the one-node cluster stays up)
	bash slurm/local_down_2node.sh

collect: $(VENV)/.installed ## merge SWEEP's results into results.parquet/.csv and a table
	$(VENV)/bin/peftbench collect $(SWEEP)

.PHONY: report
report: $(VENV)/.installed ## SWEEP's report.html, paper tables (md/tex/csv) and plots (png/svg)
	$(VENV)/bin/peftbench report $(SWEEP)

test: $(VENV)/.installed ## the whole test suite (CPU, offline; what CI runs): the Slurm and slow tests beside the others
	PY=$(PY) bash scripts/run_tests.sh

smoke-real: $(VENV)/.installed ## every task type on the vendored real slices (HuLU, SentiCoref, BELLE's eval set), CPU; SloBENCH's scorer too with SLOBENCH_EVAL_DOCKER=<checkout>
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PEFTBENCH_RUN_SLOW=1 $(PY) -m pytest -q tests/test_real_slices.py tests/test_belle_eval.py tests/test_slobench_scorer.py

.PHONY: smoke-real
.PHONY: bench
bench: $(VENV)/.installed ## speed: time to a target accuracy, peftbench vs the studies' way (A/B, table + plot), 10,000-run sweep, plan, collect
	$(PY) benchmarks/bench_scale.py --out runs/bench/scale.json
	$(PY) benchmarks/bench_plan.py --out runs/bench/plan.json
	$(PY) benchmarks/bench_token_cache.py --out runs/bench/token_cache.json
	$(PY) benchmarks/bench_speed.py --out runs/bench/speed.json
	$(PY) benchmarks/sharded_loading.py --size 300m --out runs/bench/sharded_loading.json
	$(PY) benchmarks/bench_packing.py --out runs/bench/packing.json  # localhost Slurm; skipped without it
	$(PY) benchmarks/bench_coref_learning.py --out runs/bench/coref_learning.json  # held-out coreference F1 vs string match

.PHONY: bench-estimate
bench-estimate: $(VENV)/.installed ## the time estimate ÷ measured train seconds per run (CPU, ~15 min), before and after calibration
	$(PY) benchmarks/bench_estimate.py --out runs/bench/estimate.json

.PHONY: bench-halving
bench-halving: $(VENV)/.installed ## successive halving vs the full grid on one CPU core: same choice per cell? share of the compute (docs/search.md)
	$(PY) benchmarks/bench_halving.py --out runs/bench/halving.json

BENCH_SIZE ?= 360m
.PHONY: bench-engines
bench-engines: $(VENV)/.installed ## full FT and LoRA under each engine, side by side (the GPU checks; BENCH_SIZE=360m)
	$(PY) benchmarks/bench_engines.py --size $(BENCH_SIZE) --out runs/bench/engines.json

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check src tests scripts

lock: ## regenerate requirements.lock (hashes; torch pinned apart in requirements-torch.txt)
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q pip-tools -r requirements-torch.txt
	.lock-venv/bin/pip-compile --quiet --generate-hashes --unsafe-package torch --no-build-isolation \
		--extra test --extra tracking --strip-extras --no-emit-index-url --no-emit-find-links \
		-c requirements-torch.txt -o requirements.lock pyproject.toml

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SIF ?= peftbench-$(VERSION).sif
APPTAINER ?= apptainer
SIF_BUILD_FLAGS ?= --fakeroot

sif: ## build peftbench-<version>.sif from apptainer/peftbench.def (SIF_BUILD_FLAGS=--fakeroot)
	@command -v $(APPTAINER) >/dev/null || { echo "make sif: '$(APPTAINER)' is not on PATH (module load apptainer?)" >&2; exit 1; }
	@if [ -e $(SIF) ]; then echo "make sif: $(SIF) exists; images are never overwritten (bump the version, or remove it)" >&2; exit 1; fi
	printf 'PEFTBENCH_GIT_COMMIT=%s\nPEFTBENCH_GIT_DIRTY=%s\n' "$$(git rev-parse HEAD)" \
		"$$(if git diff --quiet HEAD; then echo false; else echo true; fi)" > apptainer/build-info.env
	$(APPTAINER) build $(SIF_BUILD_FLAGS) $(SIF) apptainer/peftbench.def
	sha256sum $(SIF)

.PHONY: gpu-check sharded-loading
gpu-check: $(VENV)/.installed ## the GPU figures on one H100/H200 in < 8 min: engines, offload, QLoRA/DoRA, planner error
	$(PY) benchmarks/gpu_check.py --out runs/bench/gpu_check --calibrate runs/gpu-check

sharded-loading: $(VENV)/.installed ## each process's host memory while a ~300M model loads under ZeRO-3 and FSDP
	$(PY) benchmarks/sharded_loading.py --size 300m --out runs/bench/sharded_loading.json

.PHONY: bench-end
bench-end: $(VENV)/.installed ## a run's end on CPU: generation memory and checkpoint sizes, the planner's estimate ÷ measured
	$(PY) benchmarks/bench_generation_memory.py --out runs/bench/end.json

.PHONY: base-digest deepspeed-ops
base-digest: ## is the .def's pinned base image digest still its tag's? (skopeo inspect; fails clearly offline)
	bash scripts/check_base_digest.sh apptainer/peftbench.def

deepspeed-ops: $(VENV)/.installed ## build DeepSpeed's cpu_adam once (zero3_offload), as the image prebuilds it
	$(PY) scripts/build_deepspeed_ops.py

.PHONY: image-rehearsal
image-rehearsal: ## the image built from bare Debian 12 roots and run as Apptainer runs it, under Slurm (root; ~20 min; STEPS=...)
	bash apptainer/rehearsal/rehearse.sh $(STEPS)

clean: ## remove .venv and the demo's run folders
	rm -rf $(VENV) runs/demo
