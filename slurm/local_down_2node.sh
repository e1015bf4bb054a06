#!/usr/bin/env bash
# Stop the two-node cluster that local_up_2node.sh started (its slurmctld and both slurmd, by the
# recorded PIDs) and remove its network namespaces, links and /etc/netns files. The one-node
# cluster, munged and slurmdbd are left running.
set -uo pipefail
PIDDIR=${PIDDIR:-/run/peftbench-slurm2}
for name in slurmd-node1 slurmd-node2 slurmctld; do
  file="$PIDDIR/$name.pid"
  [ -s "$file" ] || continue
  pid=$(cat "$file")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
done
for node in node1 node2; do
  ip netns del "pb2-$node" 2>/dev/null  # takes the node's end of the veth pair, and so the pair, with it
  rm -rf "/etc/netns/pb2-$node"
done
ip link del pb2br0 2>/dev/null
echo "slurm dev2: down"
