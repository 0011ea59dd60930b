#!/usr/bin/env bash
# Install (Debian packages) and start a single-node SLURM on localhost: munged, slurmctld, slurmd.
#
#   .ci/slurm-up.sh            # idempotent: returns at once if `sinfo` already shows a usable node
#
# Needs root and apt (Debian/Ubuntu).  Minimal config: proctrack/linuxproc, task/none (no cgroups),
# select/cons_tres with CR_Core, no accounting; the node's real CPU count comes from `slurmd -C`.
# State lives in /var/spool/slurm-ci, logs in /var/log/slurm-ci.  Every wait is bounded; on failure
# the script prints the reason (and the tail of the relevant log) and exits non-zero.
set -uo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# badminima .ci/slurm-up.sh"
STATE=/var/spool/slurm-ci
LOGS=/var/log/slurm-ci
NODE=localhost

say() { echo "slurm-up: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

node_ready() {  # the node answers and can run jobs
    local st
    st=$(timeout 10 sinfo -h -N -n "$NODE" -o "%t" 2>/dev/null | head -1) || return 1
    case "$st" in idle*|mix*|alloc*|comp*) return 0 ;; *) return 1 ;; esac
}

if command -v sinfo >/dev/null 2>&1 && node_ready; then
    say "already up ($(sinfo -h -N -o '%N %c CPUs %t' | head -1))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root to install and start SLURM (uid $(id -u))"

# ---- install ------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get"
    say "installing slurm-wlm and munge from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 300 apt-get install -y -q --no-install-recommends slurm-wlm munge >/tmp/slurm-up-apt.log 2>&1; then
        timeout 300 apt-get update -q >>/tmp/slurm-up-apt.log 2>&1 \
            && timeout 600 apt-get install -y -q --no-install-recommends slurm-wlm munge >>/tmp/slurm-up-apt.log 2>&1 \
            || { tail -5 /tmp/slurm-up-apt.log >&2; die "apt-get install slurm-wlm munge failed (log: /tmp/slurm-up-apt.log)"; }
    fi
fi

# ---- munge --------------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null \
        || die "cannot create /etc/munge/munge.key"
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged 2>/tmp/slurm-up-munged.err || runuser -u munge -- /usr/sbin/munged --force \
        || { cat /tmp/slurm-up-munged.err >&2; die "munged did not start"; }
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munge credentials do not round-trip (munged not answering)"
fi

# ---- slurm.conf ---------------------------------------------------------------------------------
mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGS"
hw=$(slurmd -C 2>/dev/null | head -1)
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] || cpus=$(nproc)
topo=$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hw" || true)
if [ -f "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
    say "keeping the existing $CONF (not written by this script)"
else
    cat >"$CONF.new" <<EOF
$MARK -- single-node SLURM for tests; rewritten on every run.
ClusterName=badminima-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
MaxArraySize=1001
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus $topo State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if ! cmp -s "$CONF.new" "$CONF" 2>/dev/null; then
        mv "$CONF.new" "$CONF"
        # a changed config needs restarted daemons
        for p in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
            [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null && sleep 1
        done
    else
        rm -f "$CONF.new"
    fi
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---- daemons ------------------------------------------------------------------------------------
if ! alive "$STATE/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld -c 2>/tmp/slurm-up-ctld.err || { cat /tmp/slurm-up-ctld.err >&2; tail -5 "$LOGS/slurmctld.log" >&2 2>/dev/null; die "slurmctld did not start"; }
fi
for _ in $(seq 60); do timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" \
    || { tail -5 "$LOGS/slurmctld.log" >&2 2>/dev/null; die "slurmctld does not answer (scontrol ping)"; }

if ! alive "$STATE/slurmd.pid"; then
    say "starting slurmd (node $NODE, $cpus CPUs)"
    slurmd -N "$NODE" 2>/tmp/slurm-up-d.err || { cat /tmp/slurm-up-d.err >&2; tail -5 "$LOGS/slurmd.log" >&2 2>/dev/null; die "slurmd did not start"; }
fi
for i in $(seq 60); do
    node_ready && break
    # a node left DOWN/DRAINED by an earlier crash: bring it back
    [ "$i" = 10 ] && scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1
    sleep 0.5
done
node_ready || { sinfo -N -l >&2 2>/dev/null; tail -5 "$LOGS/slurmd.log" >&2 2>/dev/null; die "node $NODE is not usable"; }
say "up: $(sinfo -h -N -o '%N %c CPUs %t' | head -1); MaxArraySize $(scontrol show config | sed -n 's/^MaxArraySize *= *//p')"
