#!/usr/bin/env bash
# `make base-digest`: does the digest apptainer/peftbench.def pins still name its base tag?
# Each `From: IMAGE@sha256:...` line of the definition is paired with the tag it was taken from,
# written on the line before it as `# tag: IMAGE:TAG`; `skopeo inspect` asks the registry what the
# tag points at now. Exit 0: every pin current; 1: a tag moved (the message says how to bump);
# 2: the check could not be made (no skopeo, registry unreachable): never a silent pass.
set -uo pipefail
DEF=${1:-apptainer/peftbench.def}
TIMEOUT=${SKOPEO_TIMEOUT:-60}
say() { echo "make base-digest: $*" >&2; }

command -v skopeo >/dev/null || {
  say "skopeo is not on PATH, so the base image digest of $DEF cannot be checked (Debian/Ubuntu: apt-get install skopeo)"
  exit 2
}
pairs=$(awk '/^# tag: / {tag = $3} /^From: / && tag != "" {print tag, $2; tag = ""}' "$DEF")
[ -n "$pairs" ] || { say "$DEF has no '# tag: IMAGE:TAG' line before a 'From: IMAGE@sha256:...' line"; exit 2; }
status=0
while read -r tag pinned; do
  if ! out=$(timeout "$TIMEOUT" skopeo inspect --no-tags --format '{{.Digest}}' "docker://$tag" 2>&1); then
    say "cannot reach the registry for docker://$tag (skopeo inspect failed, so $DEF's pin is unchecked): ${out:-timed out after ${TIMEOUT} s}"
    exit 2
  fi
  if [ "${pinned#*@}" = "$out" ]; then
    echo "base-digest: $tag -> $out (pinned in $DEF: current)"
  else
    say "$tag now points at $out but $DEF pins ${pinned#*@}: bump the From line after reading the image's changes"
    status=1
  fi
done <<< "$pairs"
exit $status
