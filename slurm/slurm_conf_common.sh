# The slurm.conf settings both localhost clusters share (sourced by local_up.sh and
# local_up_2node.sh, which add their own names, ports, paths and nodes). Facts behind each setting:
# ../shared/reference/slurm-on-localhost.md. No systemd, no cgroups: proctrack/linuxproc + task/none.
common_slurm_conf() {
  cat <<'CONF'
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
MailProg=/bin/true
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MaxArraySize=4001
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}
