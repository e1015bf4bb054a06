# Sourced by the rehearsal's run steps: two ordinary users of one group, and how to act as them.
#   RUN_USER submits; OTHER_USER (same group) looks after the sweep; GROUP owns the shared folders.
# shellcheck shell=bash
RUN_USER="${RUN_USER:-peftbench-r1}"
OTHER_USER="${OTHER_USER:-peftbench-r2}"
GROUP="${GROUP:-peftbench-lab}"
STANDIN_BIN="$REPO/apptainer/rehearsal/bin"

ensure_users() {
  getent group "$GROUP" >/dev/null || groupadd "$GROUP"
  local user
  for user in "$RUN_USER" "$OTHER_USER"; do
    id "$user" >/dev/null 2>&1 || useradd --create-home --gid "$GROUP" --shell /bin/bash "$user"
  done
}

# The log the stand-in appends refused writes to: every rehearsal user may append.
writes_log() {
  touch "$PEFTBENCH_REHEARSAL_WRITES" && chgrp "$GROUP" "$PEFTBENCH_REHEARSAL_WRITES"
  chmod 664 "$PEFTBENCH_REHEARSAL_WRITES"
}

# A folder shared by the group as a lab would make it: group-owned, setgid, group-writable.
shared_folder() {  # DIR
  mkdir -p "$1" && chgrp "$GROUP" "$1" && chmod 2775 "$1"
}

# COMMAND run as USER in a login-like shell: umask 002, the stand-in first on PATH, the login
# node's peftbench (the image's own venv, run from the host: the same lock inside and outside),
# every write into the image traced. Offline like a compute node.
as_user() {  # USER WORKDIR COMMAND
  local user="$1" work="$2"; shift 2
  su "$user" -s /bin/bash -c "umask 002; cd '$work' && \
    export PATH='$STANDIN_BIN':/usr/local/bin:/usr/bin:/bin \
      APPTAINER_STANDIN_TRACE='$PEFTBENCH_REHEARSAL_WRITES' \
      HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
      OMP_NUM_THREADS=1 && $*"
}
