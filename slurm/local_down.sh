#!/usr/bin/env bash
# Stop exactly the daemons local_up.sh started, by their recorded PIDs (SIGTERM, then SIGKILL after 20 s).
set -uo pipefail
PIDDIR=${PIDDIR:-/run/peftbench-slurm}
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  file="$PIDDIR/$name.pid"
  [ -s "$file" ] || continue
  pid=$(cat "$file")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$file"
  echo "slurm: stopped $name ($pid)"
done
