#!/usr/bin/env bash
# Start a SECOND, separate Slurm cluster on this machine (ClusterName dev2cluster) for the `dev2`
# profile and the two-node tests: one slurmctld (port 6827) and two slurmd nodes, node1 and node2,
# each in its own network namespace (pb2-node1/2) with its own address on a private bridge
# (10.77.0.0/24: the controller 10.77.0.1, node1 .11, node2 .12) and its own hostname (a UTS
# namespace), so a job spans two hosts that reach each other only over the network, as on a real
# site. The file system is shared (the run folder, the venv), as on a real site's shared storage.
#
# Its own slurm.conf (/etc/slurm-dev2/slurm.conf: use it with SLURM_CONF=...), state, spool, log and
# PID files; it shares munged and slurmdbd with the one-node cluster (slurm/local_up.sh, started
# first if need be), which it leaves as it is. Every daemon's PID is recorded in $PIDDIR, and
# local_down_2node.sh stops exactly those and removes the namespaces, links and files made here.
# Needs root. About 5 s when the one-node cluster is up.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm_conf_common.sh
source "$HERE/slurm_conf_common.sh"
PIDDIR=${PIDDIR:-/run/peftbench-slurm2}
CLUSTER=dev2cluster
CONF_DIR=/etc/slurm-dev2
SUBNET=10.77.0
BRIDGE=pb2br0
NODES=(node1 node2)
export SLURM_CONF=$CONF_DIR/slurm.conf

idle_nodes() { sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$' || true; }
serving_nodes() { sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed|allocated|completing)$' || true; }
if [ -f "$SLURM_CONF" ] && [ "$(serving_nodes)" = 2 ]; then
  echo "slurm dev2: already up"; exit 0
fi

# munged, MariaDB and slurmdbd come from the one-node cluster (one authentication and one accounting
# daemon serving several clusters, as at a site with more than one); local_up.sh starts it if it is
# not up and leaves it alone if it is (idle or busy).
SLURM_CONF=/etc/slurm/slurm.conf bash "$HERE/local_up.sh" >/dev/null
one_node_serving() {  # munged and slurmdbd answer (asked through the one-node cluster's conf: ours is not written yet)
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && SLURM_CONF=/etc/slurm/slurm.conf sacctmgr -n list cluster >/dev/null 2>&1
}
for _ in $(seq 30); do one_node_serving && break; sleep 1; done
if ! one_node_serving; then
  echo "slurm dev2: munged and slurmdbd of the one-node cluster must run (slurm/local_up.sh)" >&2; exit 1
fi
mkdir -p "$PIDDIR"
if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    iproute2 util-linux
fi

record() {  # record NAME PIDFILE: wait until the forking daemon wrote its pidfile, copy it
  for _ in $(seq 1 100); do [ -s "$2" ] && break; sleep 0.1; done
  cp "$2" "$PIDDIR/$1.pid"
}

# 1. network: a bridge in the root namespace (the controller's side), a veth pair per node
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$SUBNET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
fi
for i in 1 2; do
  node=${NODES[$((i - 1))]} ns=pb2-${NODES[$((i - 1))]}
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link add "pb2v$i" type veth peer name eth0 netns "$ns"
    ip link set "pb2v$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$SUBNET.1$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  fi
  # the node's /etc/hosts (bound over it in the node's mount namespace, below)
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1 localhost\n%s.1 %s\n%s.11 node1\n%s.12 node2\n' \
    "$SUBNET" "$(hostname -s)" "$SUBNET" "$SUBNET" > "/etc/netns/$ns/hosts"
done

# 2. config
mkdir -p "$CONF_DIR" /var/spool/slurmctld-dev2 /var/log/slurm
for node in "${NODES[@]}"; do mkdir -p "/var/spool/slurmd-dev2-$node"; done
MEM_MB=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.4}' /proc/meminfo)  # each node: 40 % of the machine
cat > "$SLURM_CONF" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)($SUBNET.1)
SlurmctldPort=6827
SlurmdPort=6828
StateSaveLocation=/var/spool/slurmctld-dev2
SlurmdSpoolDir=/var/spool/slurmd-dev2-%n
SlurmctldPidFile=/run/slurmctld-dev2.pid
SlurmdPidFile=/run/slurmd-dev2-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld-dev2.log
SlurmdLogFile=/var/log/slurm/slurmd-dev2-%n.log
NodeName=node1 NodeAddr=$SUBNET.11 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
NodeName=node2 NodeAddr=$SUBNET.12 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
$(common_slurm_conf)
CONF
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null

# 3. controller (root namespace), then one slurmd per node namespace, each with its own hostname
if ! scontrol ping 2>/dev/null | grep -q UP; then
  rm -f /run/slurmctld-dev2.pid
  /usr/sbin/slurmctld -i
  record slurmctld /run/slurmctld-dev2.pid
fi
for node in "${NODES[@]}"; do
  if [ -s "$PIDDIR/slurmd-$node.pid" ] && kill -0 "$(cat "$PIDDIR/slurmd-$node.pid")" 2>/dev/null; then continue; fi
  rm -f "/run/slurmd-dev2-$node.pid"
  # nsenter, not `ip netns exec`: that remounts /sys, without the cgroup mounts slurmd needs. The
  # node's own mount namespace binds its hosts file over /etc/hosts (how node names resolve there).
  nsenter --net="/run/netns/pb2-$node" unshare --uts --mount --propagation slave sh -c \
    "mount --bind /etc/netns/pb2-$node/hosts /etc/hosts && hostname $node && exec /usr/sbin/slurmd -N $node"
  record "slurmd-$node" "/run/slurmd-dev2-$node.pid"
done
for _ in $(seq 1 120); do [ "$(idle_nodes)" = 2 ] && break; sleep 0.25; done
[ "$(idle_nodes)" = 2 ] || { echo "slurm dev2: nodes did not become idle: $(sinfo -h -N -o '%N %T')" >&2; exit 1; }
echo "slurm dev2: up ($(sinfo -h -N -o '%N %T' | tr '\n' ' '); SLURM_CONF=$SLURM_CONF)"
