#!/usr/bin/env bash
# `make test`: the whole suite as two pytest sessions at once, so that the two cores are not idle
# while the Slurm tests wait on the scheduler. One session runs the `slurm`-marked tests (they submit
# to the localhost cluster and mostly wait for its jobs; they run one after another, as they share
# that cluster, and some of them stop, fill or fault it); the other runs every other test. Each has
# its own temporary folder; the Slurm session's output is printed after the other's. Exits non-zero
# when either session fails. Arguments go to both sessions (e.g. -x, -k EXPR).
set -uo pipefail
PY=${PY:-.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/peftbench-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$PY" -m pytest -m slurm -p no:cacheprovider --basetemp="$work/slurm" "$@" >"$work/slurm.log" 2>&1 &
slurm_session=$!
"$PY" -m pytest -m "not slurm" --basetemp="$work/rest" "$@"
rest=$?
wait "$slurm_session"
slurm=$?
echo
echo "================ the Slurm tests (run alongside the others) ================"
cat "$work/slurm.log"
# 5: no test collected (no slurm-marked test matched the arguments): not a failure of the suite
[ "$slurm" = 5 ] && slurm=0
[ "$rest" = 5 ] && rest=0
echo "suite: other tests exit $rest, Slurm tests exit $slurm"
[ "$rest" = 0 ] && [ "$slurm" = 0 ]
