#!/usr/bin/env bash
# make image-rehearsal: apptainer/peftbench.def's build and run, rehearsed with real parts on a
# Debian 12 machine where Apptainer cannot be installed (root; network for packages only).
#
#   bash apptainer/rehearsal/rehearse.sh [STEP...]     # default: all steps, in order
#
# Steps (each needs the ones before it to have run once):
#   roots   two bare Debian 12 roots from Debian's mirror (mmdebstrap, minbase), cached as tarballs
#           under .rehearsal/cache: the build root (python3.11, -venv, -dev, g++) and the final one
#           (python3.11, -venv: no compiler, no headers)
#   build   the build stage: the .def's `%files` copied in, then, chrooted, apptainer/build_steps.sh
#           build (scripts/install.sh EDITABLE=0, DeepSpeed's ops compiled in, the checks)
#   final   the final stage: a fresh final root, the .def's `%files from build` copied from the build
#           root, its %environment installed as Apptainer does, build_steps.sh final (labels)
#   run     as an ordinary user (RUN_USER) through the `apptainer` stand-in (apptainer/rehearsal/bin):
#           doctor green inside; the demo sweep inside with no network and the HF cache read-only
#   slurm   a sweep on the localhost Slurm (profile `rehearsal`, container: the sandbox): every
#           array task inside it, a packed task, a killed task resumed by `resubmit`; then a second
#           user of the same group runs status, collect and resubmit (umask 002, setgid runs folder)
# Every step runs with APPTAINER_STANDIN_TRACE: any write attempted into the image fails the
# rehearsal. Outputs: .rehearsal/ (git-ignored). What differs from the real image: docs/clusters.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$PWD"
DEF="$REPO/apptainer/peftbench.def"
OUT="${REHEARSAL_DIR:-$REPO/.rehearsal}"
CACHE="$OUT/cache"
BUILD_ROOT="$OUT/build-root"
IMAGE="$OUT/image"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BUILD_PACKAGES=python3.11,python3.11-venv,python3.11-dev,g++,ca-certificates
FINAL_PACKAGES=python3.11,python3.11-venv,ca-certificates
# Where pip finds packages on this machine (its configured mirrors and wheel folder), bound into
# the build root read-only; PyPI itself is reached through the network as usual, with this
# machine's certificate authorities (its proxy's among them) bound over the root's own.
PIP_FOLDERS=(/opt/wheels /opt/pypi /opt/pypi-more)
HOST_CA=/etc/ssl/certs/ca-certificates.crt
export PEFTBENCH_REHEARSAL_WRITES="$OUT/writes-into-image.log"

say() { printf '\n=== rehearsal: %s\n' "$*"; }
die() { printf 'rehearsal FAILED: %s\n' "$*" >&2; exit 1; }

# The lines of one section of one stage of the .def (`files`, `files from build`, `environment`).
def_section() {  # STAGE_NUMBER SECTION
  awk -v stage="$1" -v section="%$2" '
    /^Bootstrap:/ { n++ }
    /^%/ { inside = (n == stage && $0 == section); next }
    inside && NF && $1 !~ /^#/ { print }' "$DEF"
}

root_tarball() {  # NAME PACKAGES: a cached bare root, rebuilt when its package list changes
  local tar="$CACHE/$1-$(echo "$2" | sha256sum | cut -c1-12).tar"
  if [[ ! -s "$tar" ]]; then
    mkdir -p "$CACHE"
    mmdebstrap --variant=minbase --include="$2" bookworm "$tar.part.tar" "$MIRROR" >&2
    mv "$tar.part.tar" "$tar"
  fi
  echo "$tar"
}

fresh_root() {  # DIR TARBALL
  rm -rf "$1" && mkdir -p "$1" && tar -C "$1" -xf "$2"
  cp /etc/resolv.conf "$1/etc/resolv.conf"
}

# ROOT COMMAND...: chrooted as root; /proc, /sys and /dev mounted (as in %post), pip's folders read-only
in_root() {
  local root="$1"; shift
  local binds="mount --bind -o ro $HOST_CA '$root$HOST_CA' && "
  for folder in "${PIP_FOLDERS[@]}"; do
    [[ -d "$folder" ]] && binds+="mkdir -p '$root$folder' && mount --bind -o ro '$folder' '$root$folder' && "
  done
  unshare --mount --propagation private bash -c "
    mount -t proc proc '$root/proc' && mount --rbind /sys '$root/sys' && mount --rbind /dev '$root/dev' && $binds
    exec chroot '$root' /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
      PIP_FIND_LINKS=/opt/wheels 'PIP_EXTRA_INDEX_URL=file:///opt/pypi/simple file:///opt/pypi-more/simple' \
      \"\$@\"" in_root "$@"
  for folder in "${PIP_FOLDERS[@]}"; do rmdir -p --ignore-fail-on-non-empty "$root$folder" 2>/dev/null || true; done
}

step_roots() {
  say "roots: bare Debian 12 (bookworm) roots, cached in $CACHE"
  root_tarball build "$BUILD_PACKAGES" >/dev/null
  root_tarball final "$FINAL_PACKAGES" >/dev/null
}

step_build() {
  say "build stage: %files, then build_steps.sh build in a bare root"
  fresh_root "$BUILD_ROOT" "$(root_tarball build "$BUILD_PACKAGES")"
  printf 'PEFTBENCH_GIT_COMMIT=%s\nPEFTBENCH_GIT_DIRTY=%s\n' "$(git rev-parse HEAD)" \
    "$(if git diff --quiet HEAD; then echo false; else echo true; fi)" > apptainer/build-info.env
  local source target
  while read -r source target; do
    mkdir -p "$(dirname "$BUILD_ROOT$target")"
    cp -a "$source" "$BUILD_ROOT$target"
  done < <(def_section 1 files)
  # The CPU flavour of the .def's settings: torch is the CPU wheel of the same version (no CUDA
  # here), DeepSpeed builds its CPU accelerator's cpu_adam (and the shared-memory collectives).
  in_root "$BUILD_ROOT" PYTHON=python3.11 REQUIRE_CUDA=0 TORCH_INDEX= TEST_ASSETS=0 \
    DS_BUILD_OPS=0 DS_BUILD_CPU_ADAM=1 DS_BUILD_SHM_COMM=1 DS_ACCELERATOR=cpu \
    bash /opt/peftbench/src/apptainer/build_steps.sh build
}

step_final() {
  say "final stage: %files from build into a bare root without compiler, then build_steps.sh final"
  fresh_root "$IMAGE" "$(root_tarball final "$FINAL_PACKAGES")"
  local source target
  while read -r source target; do
    mkdir -p "$(dirname "$IMAGE$target")"
    cp -a "$BUILD_ROOT$source" "$IMAGE$target"
  done < <(def_section 2 "files from build")
  mkdir -p "$IMAGE/.singularity.d/env"
  def_section 2 environment > "$IMAGE/.singularity.d/env/90-environment.sh"
  in_root "$IMAGE" REQUIRE_CUDA=0 APPTAINER_LABELS=/.singularity.d/labels \
    APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh \
    bash /opt/peftbench/src/apptainer/build_steps.sh final
  rm -rf "$IMAGE/var/lib/apt/lists/"* "$IMAGE/var/cache/apt/"*.bin
  chmod -R a+rX,go-w "$IMAGE"
  cat "$IMAGE/.singularity.d/labels"
  du -sh "$IMAGE"
}

step_run() { bash "$REPO/apptainer/rehearsal/run_inside.sh" "$IMAGE" "$OUT"; }

step_slurm() { bash "$REPO/apptainer/rehearsal/slurm_inside.sh" "$IMAGE" "$OUT"; }

[[ "$(id -u)" == 0 ]] || die "run as root (chroot, mmdebstrap, test users)"
for tool in mmdebstrap strace; do  # Debian's own tools: the bootstrap, and the write tracer
  command -v "$tool" >/dev/null || apt-get install -y -q "$tool" >/dev/null || die "cannot install $tool"
done
mkdir -p "$OUT"
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(roots build final run slurm)
rm -f "$PEFTBENCH_REHEARSAL_WRITES"
for step in "${steps[@]}"; do
  start=$SECONDS
  "step_$step"
  printf '=== rehearsal: step %s took %d s\n' "$step" $((SECONDS - start)) | tee -a "$OUT/timings.txt"
done
if [[ -s "$PEFTBENCH_REHEARSAL_WRITES" ]]; then
  cat "$PEFTBENCH_REHEARSAL_WRITES" >&2
  die "writes were attempted into the image (above)"
fi
say "passed: ${steps[*]}"
