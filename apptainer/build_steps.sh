#!/usr/bin/env bash
# The image's build steps, in one place: apptainer/peftbench.def's %post runs them (`build` in the
# build stage, `final` in the final one), and so does the rehearsal (apptainer/rehearsal/rehearse.sh)
# in bare Debian 12 roots, so what is rehearsed is what `make sif` runs. Run as root from anywhere;
# the checkout's copy is /opt/peftbench/src (the definition's %files).
#
#   build_steps.sh build   # scripts/install.sh (EDITABLE=0, no test assets) into /opt/peftbench/venv,
#                          # DeepSpeed's ops compiled in at install (DS_BUILD_*), then checked: each
#                          # prebuilt op imports without compiling; the list goes to prebuilt-ops
#   build_steps.sh final   # in the final root (no compiler, no headers): the venv imports, the
#                          # prebuilt ops still import, mount points, provenance labels and variables
#
# Environment, set by the caller (the .def for the CUDA image, the rehearsal for its CPU root):
#   PYTHON         the interpreter the venv is made with (default python3.11, the lock's)
#   TORCH_INDEX    where torch comes from (scripts/install.sh); the image: PyTorch's cu128 index
#   REQUIRE_CUDA   1 (default): fail unless torch is a CUDA build; 0: the rehearsal's CPU torch
#   DS_BUILD_OPS=0 DS_BUILD_CPU_ADAM=1 DS_ACCELERATOR ...   DeepSpeed's build of its ops
#   APPTAINER_LABELS APPTAINER_ENVIRONMENT   (final) the files `apptainer build` reads labels and
#                  run-time variables from
set -euo pipefail

PREFIX=/opt/peftbench
VENV="$PREFIX/venv"
PY="$VENV/bin/python"
REQUIRE_CUDA="${REQUIRE_CUDA:-1}"

step() { printf '==> build_steps %s\n' "$*"; }

check_torch() {
  if [[ "$REQUIRE_CUDA" == 1 ]]; then
    "$PY" -c "import torch; assert torch.version.cuda, 'torch is not a CUDA build'"
  else
    "$PY" -c "import torch; print('torch', torch.__version__, '(REQUIRE_CUDA=0: CUDA not required)')"
  fi
}

# Each op DeepSpeed was built with imports without compiling (there is no compiler in the final
# image, and it is read-only); cpu_adam (zero3_offload's optimizer) must be among them. Prints them.
check_prebuilt_ops() {
  "$PY" - <<'EOF'
import importlib

from deepspeed.git_version_info import installed_ops
from deepspeed.ops.op_builder.all_ops import ALL_OPS

built = sorted(op for op, ok in installed_ops.items() if ok)
assert 'cpu_adam' in built, f'cpu_adam was not prebuilt: {built}'
for op in built:
    importlib.import_module(ALL_OPS[op].absolute_name())
print(','.join(built))
EOF
}

build() {
  cd "$PREFIX/src"
  step "install.sh EDITABLE=0 TEST_ASSETS=0 -> $VENV"
  PYTHON="${PYTHON:-python3.11}" EDITABLE=0 TEST_ASSETS=0 bash scripts/install.sh "$VENV"
  check_torch
  rm -rf build src/*.egg-info
  step "prebuilt DeepSpeed ops -> $PREFIX/prebuilt-ops"
  check_prebuilt_ops | tail -n 1 > "$PREFIX/prebuilt-ops"
  cat "$PREFIX/prebuilt-ops"
}

final() {
  cd "$PREFIX/src"
  step "the venv and its prebuilt ops, without a compiler"
  local compiler
  for compiler in cc gcc c++ g++; do
    if command -v "$compiler" >/dev/null; then
      echo "build_steps final: a compiler is in the final image: $(command -v "$compiler")" >&2
      exit 1
    fi
  done
  "$PY" -c "import deepspeed, peftbench"
  check_torch
  [[ "$(check_prebuilt_ops 2>/dev/null | tail -n 1)" == "$(cat "$PREFIX/prebuilt-ops")" ]]

  # Mount points for the shared HF cache and data (bind them: docs/clusters.md).
  mkdir -p /hf /data

  step "provenance: labels and variables"
  # shellcheck disable=SC1091
  . "$PREFIX/build-info.env"
  local version lock_sha256
  version="$("$PY" -c 'import peftbench; print(peftbench.__version__)')"
  lock_sha256="$(sha256sum requirements.lock | cut -d' ' -f1)"
  {
    echo "org.peftbench.version $version"
    echo "org.peftbench.git-commit $PEFTBENCH_GIT_COMMIT"
    echo "org.peftbench.git-dirty $PEFTBENCH_GIT_DIRTY"
    echo "org.peftbench.lock-sha256 $lock_sha256"
    echo "org.peftbench.deepspeed-prebuilt-ops $(cat "$PREFIX/prebuilt-ops")"
  } >> "$APPTAINER_LABELS"
  {
    echo "export PEFTBENCH_GIT_COMMIT=$PEFTBENCH_GIT_COMMIT"
    echo "export PEFTBENCH_GIT_DIRTY=$PEFTBENCH_GIT_DIRTY"
  } >> "$APPTAINER_ENVIRONMENT"
}

case "${1:-}" in
  build) build ;;
  final) final ;;
  *) echo "usage: build_steps.sh build|final" >&2; exit 2 ;;
esac
