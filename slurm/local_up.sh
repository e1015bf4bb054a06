#!/usr/bin/env bash
# Start a real one-node Slurm cluster on localhost (munged, MariaDB, slurmdbd, slurmctld, slurmd),
# for the `slurm` tests and the `dev` cluster profile. Needs root and Debian (apt). No systemd, no
# cgroups: proctrack/linuxproc + task/none. About 25 s on a fresh machine, 3 s when installed.
# Each daemon's PID is recorded in $PIDDIR so that local_down.sh stops exactly these daemons.
# Facts behind every setting: ../shared/reference/slurm-on-localhost.md (measured on this kind of machine).
set -euo pipefail
# shellcheck source=slurm_conf_common.sh
source "$(cd "$(dirname "$0")" && pwd)/slurm_conf_common.sh"
PIDDIR=${PIDDIR:-/run/peftbench-slurm}
CLUSTER=localcluster
mkdir -p "$PIDDIR"

# Up = the controller answers and the node serves jobs: idle, or busy with jobs (mixed, allocated,
# completing). A busy cluster must not be taken for a stopped one: restarting would orphan its
# daemons and overwrite their PID records.
if scontrol ping 2>/dev/null | grep -q UP \
  && sinfo -h -o %T 2>/dev/null | grep -qxE 'idle|mixed|allocated|completing'; then
  echo "slurm: already up"; exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  # keep package scripts from starting daemons: we start them ourselves and own their PIDs
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    slurm-wlm munge slurmdbd mariadb-server
  rm -f /usr/sbin/policy-rc.d
fi

record() {  # record NAME PIDFILE: wait until the forking daemon wrote its pidfile, copy it
  for _ in $(seq 1 100); do [ -s "$2" ] && break; sleep 0.1; done
  cp "$2" "$PIDDIR/$1.pid"
}

# 1. munge
install -d -o munge -g munge -m 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  record munged /run/munge/munged.pid
fi

# 2. config
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
MEM_MB=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=$CLUSTER
SlurmctldHost=localhost
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
$(common_slurm_conf)
CONF

# 3. MariaDB + slurmdbd (submitit reads job states only through sacct)
install -d -o mysql -g root -m 755 /run/mysqld
if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
  setsid nohup /usr/sbin/mariadbd --user=mysql >/var/log/mariadbd.out 2>&1 </dev/null &
  echo $! > "$PIDDIR/mariadbd.pid"
  for _ in $(seq 1 120); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.25; done
fi
mariadb -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
                   GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf
rm -f /run/slurmdbd.pid
/usr/sbin/slurmdbd
record slurmdbd /run/slurmdbd.pid
for _ in $(seq 1 120); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.25; done
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null

# 4. controller + node daemon
rm -f /run/slurmctld.pid /run/slurmd.pid
/usr/sbin/slurmctld -i
record slurmctld /run/slurmctld.pid
/usr/sbin/slurmd -N localhost
record slurmd /run/slurmd.pid
for _ in $(seq 1 120); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.25; done
sinfo -h -o %T | grep -qx idle || { echo "slurm: node did not become idle" >&2; exit 1; }
echo "slurm: up ($(sinfo -h -o '%N %c CPUs %m MB %T'))"
