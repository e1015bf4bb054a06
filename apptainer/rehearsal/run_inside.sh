#!/usr/bin/env bash
# The rehearsal's `run` step (apptainer/rehearsal/rehearse.sh): the image run as Apptainer runs it,
# by an ordinary user, through the stand-in. Fails on the first thing that is not as promised.
#   run_inside.sh IMAGE OUT
set -euo pipefail
IMAGE="$1"
OUT="$2"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=apptainer/rehearsal/users.sh
. "$REPO/apptainer/rehearsal/users.sh"
die() { printf 'rehearsal FAILED: %s\n' "$*" >&2; exit 1; }

ensure_users
SHARED="$OUT/shared"
HF="$OUT/hf"
WORK="$SHARED/run-$RUN_USER"
shared_folder "$SHARED"
writes_log
mkdir -p "$HF" && chmod 755 "$HF"  # the shared HF cache; the demo needs nothing from it
rm -rf "$WORK" && shared_folder "$WORK" && mkdir -p "$WORK/sweeps"
# The demo sweep, reduced (fewer samples, one epoch): what is rehearsed is where it runs.
sed -e 's/^  epochs: .*/  epochs: 1/' -e 's/^  max_train_samples: .*/  max_train_samples: 64/' \
  -e 's/^  max_eval_samples: .*/  max_eval_samples: 32/' "$REPO/configs/sweeps/demo.yaml" > "$WORK/sweeps/demo.yaml"
chgrp -R "$GROUP" "$WORK" && chmod -R g+w "$WORK"

printf '\n--- the stand-in says what it is\n'
as_user "$RUN_USER" "$WORK" "apptainer --help | grep -q 'STAND-IN for .apptainer exec.'" || die "stand-in --help"

printf '\n--- no compiler inside, the caller'"'"'s own uid, not root\n'
inside_id=$(as_user "$RUN_USER" "$WORK" "apptainer exec '$IMAGE' id -u")
[[ "$inside_id" == "$(id -u "$RUN_USER")" ]] || die "inside uid $inside_id is not $RUN_USER's"
if as_user "$RUN_USER" "$WORK" "apptainer exec '$IMAGE' sh -c 'command -v cc gcc g++ c++'"; then
  die "a compiler is on PATH inside the image"
fi

printf '\n--- peftbench doctor inside: every check green, the prebuilt ops with no compiler\n'
as_user "$RUN_USER" "$WORK" "apptainer exec --bind '$HF:/hf:ro' '$IMAGE' peftbench doctor --runs-dir '$WORK/runs'" \
  | tee "$OUT/doctor.txt" || die "peftbench doctor inside the image failed (above)"
grep -Eq 'cpu_adam.*prebuilt in DeepSpeed, imports without compiling' "$OUT/doctor.txt" \
  || die "doctor does not report cpu_adam prebuilt"

printf '\n--- the demo sweep inside: no network, the HF cache read-only, writes only to the runs folder\n'
home=$(getent passwd "$RUN_USER" | cut -d: -f6)
marker="$OUT/demo.start" && touch "$marker" && sleep 1
start=$SECONDS
as_user "$RUN_USER" "$WORK" "apptainer exec --net --network none --bind '$HF:/hf:ro' '$IMAGE' \
  peftbench sweep sweeps/demo.yaml --runs-dir '$WORK/runs'" | tee "$OUT/demo.txt" \
  || die "the demo sweep inside the image failed (above)"
echo "demo sweep inside: $((SECONDS - start)) s" | tee -a "$OUT/timings.txt"
results=$(find "$WORK/runs" -name result.json | wc -l)
[[ "$results" -ge 8 ]] || die "the demo made $results result.json files, not 8"
# Outside the runs folder only the image-digest memo (docs/clusters.md, Provenance) may be written.
written=$(find "$home" "$WORK" -newer "$marker" -type f ! -path "$WORK/runs/*" \
  ! -path "$home/.cache/peftbench/image-sha256.json" | sort)
[[ -z "$written" ]] || die "the demo wrote outside its runs folder: $written"
echo "demo: $results results in $WORK/runs, nothing else written in \$HOME or the work folder"
