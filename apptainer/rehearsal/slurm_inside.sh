#!/usr/bin/env bash
# The rehearsal's `slurm` step (apptainer/rehearsal/rehearse.sh): a sweep on the localhost Slurm
# whose profile's `container:` is the sandbox image, by two ordinary users of one group.
#   slurm_inside.sh IMAGE OUT
# RUN_USER submits (umask 002, a setgid runs folder): one packed task (two bitfit runs), one lora
# task, one full task that is cancelled mid-training. OTHER_USER then runs `status`, `resubmit`
# (only the cancelled run: the others are still claimed by RUN_USER's tasks) and, at the end,
# `collect`. Every task runs inside the image (provenance: its path and sha256); the cancelled run
# resumes from its checkpoint inside it.
set -euo pipefail
IMAGE="$1"
OUT="$2"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=apptainer/rehearsal/users.sh
. "$REPO/apptainer/rehearsal/users.sh"
die() { printf 'rehearsal FAILED: %s\n' "$*" >&2; exit 1; }
sinfo >/dev/null 2>&1 || die "the localhost Slurm is not up (make slurm-up)"

ensure_users
writes_log
SHARED="$OUT/shared"
LAB="$SHARED/lab"              # the group's project folder: sweeps, profiles, runs
RUNS="$LAB/runs"
PY="env PYTHONDONTWRITEBYTECODE=1 $IMAGE/opt/peftbench/venv/bin/python"
PEFTBENCH="$PY -m peftbench"
shared_folder "$SHARED"
rm -rf "$LAB" && shared_folder "$LAB"
for folder in "$RUNS" "$LAB/profiles" "$LAB/sweeps"; do shared_folder "$folder"; done

# The rehearsal profile: the packaged `dev` one, every task in the sandbox image.
{
  grep -v '^runs_dir:' "$REPO/src/peftbench/plan/clusters/dev.yaml"
  cat <<EOF
runs_dir: $RUNS
container:
  image: $IMAGE
  binds: [$OUT/hf:/hf:ro]
  env: {OMP_NUM_THREADS: "1"}
EOF
} > "$LAB/profiles/rehearsal.yaml"
cat > "$LAB/sweeps/rehearsal.yaml" <<'EOF'
name: rehearsal
models: [minilm-l6]
tasks: [movie_sentiment]
methods:
  bitfit:   # two runs side by side in one array task
    learning_rate: [1.0e-3, 1.0e-2]
    resources: {cpus: 2, mem_gb: 2, time_min: 10, runs_per_gpu: 2}
  lora:
    r: 8
    lora_alpha: 16
    target_modules: [query, value]
    learning_rate: 2.0e-3
  full:     # cancelled mid-training, resumed from its checkpoint
    learning_rate: 1.0e-4
seeds: [0]
training:
  batch_size: 8
  max_steps: 150
  checkpoint_steps: 5
  max_train_samples: 128
  max_eval_samples: 16
  max_length: 64
  eval_strategy: "no"
resources: {cpus: 1, mem_gb: 2, time_min: 10}
EOF
chgrp -R "$GROUP" "$LAB" && chmod -R g+w "$LAB"
SWEEP_ARGS="sweeps/rehearsal.yaml --cluster rehearsal --profiles profiles"

printf '\n--- %s submits\n' "$RUN_USER"
as_user "$RUN_USER" "$LAB" "$PEFTBENCH sweep $SWEEP_ARGS" || die "sweep submission by $RUN_USER"
full_run=$(grep -l '"method": *"full"' "$RUNS"/rehearsal/*/spec.json | xargs dirname | xargs basename)
[[ -n "$full_run" ]] || die "no full run folder"

printf '\n--- the full run cancelled mid-training (after a checkpoint)\n'
for _ in $(seq 480); do
  ls "$RUNS/rehearsal/$full_run/checkpoints" 2>/dev/null | grep -q . && break
  sleep 0.5
done
task=$($PY - "$RUNS/rehearsal" "$full_run" <<'EOF'
import sys
from pathlib import Path
from peftbench.launch.slurm_records import read_submissions
tasks = {job: run for sub in read_submissions(Path(sys.argv[1])) for job, run in sub.tasks.items()}
print(next(job for job, run in tasks.items() if run == sys.argv[2]))
EOF
)
scancel "$task"
[[ ! -e "$RUNS/rehearsal/$full_run/result.json" ]] || die "the full run ended before it could be cancelled"
echo "cancelled $task ($full_run) at step $(cat "$RUNS/rehearsal/$full_run/progress.json")"

printf '\n--- %s (same group): status, then resubmit while the other tasks still hold their claims\n' "$OTHER_USER"
for _ in $(seq 60); do squeue -h -j "$task" 2>/dev/null | grep -q . || break; sleep 1; done
as_user "$OTHER_USER" "$LAB" "$PEFTBENCH status $SWEEP_ARGS" | tee "$OUT/status-other.txt" || true
as_user "$OTHER_USER" "$LAB" "$PEFTBENCH resubmit $SWEEP_ARGS" | tee "$OUT/resubmit-other.txt" \
  || die "resubmit by $OTHER_USER"
grep -q "1 run(s) submitted" "$OUT/resubmit-other.txt" || die "resubmit by $OTHER_USER did not submit exactly the cancelled run"

printf '\n--- every result: a success, inside the image (path and sha256), the cancelled run resumed\n'
as_user "$OTHER_USER" "$LAB" "$PY '$REPO/apptainer/rehearsal/check_results.py' '$RUNS/rehearsal' 4 '$IMAGE' \
  --wait 600 --resumed '$full_run'" || die "results (above)"
as_user "$OTHER_USER" "$LAB" "$PEFTBENCH collect sweeps/rehearsal.yaml --runs-dir '$RUNS'" \
  | tee "$OUT/collect-other.txt" || die "collect by $OTHER_USER"
unreadable=$(find "$RUNS" ! -perm -g+r -printf '%u %m %p\n' | head)
[[ -z "$unreadable" ]] || die "files the group cannot read: $unreadable"
echo "slurm: 4 runs in 3 array tasks (one packed) inside $IMAGE; $OTHER_USER resubmitted and collected"
