#!/bin/sh
# Runs inside the rxe VM (../shared/testbed/rxe-vm) from the shared folder,
# which holds the static rdma-monitor and nlrecord. Writes everything the
# host-side check (compare.py) needs into ./out: the agent's view and the
# kernel tools' view of the same quiescent moments, before and after
# traffic, and the snapshots of an agent running while rxe1 is deleted
# and re-added.
set -u
OUT=$PWD/out
rm -rf "$OUT"; mkdir -p "$OUT"
AGENT=$PWD/rdma-monitor
export RDMA_MON_PROMETHEUS__ENABLED=false

# Waits until DIR holds at least N snapshot files (at most 120 s): a TCG guest
# on a loaded host can take seconds to discover, so fixed sleeps are not enough.
wait_snapshots() { # $1 = dir, $2 = count
  i=0
  while [ "$(ls "$1" 2>/dev/null | grep -c '\.json$')" -lt "$2" ] && [ $i -lt 1200 ]; do
    sleep 0.1; i=$((i + 1))
  done
  if [ $i -ge 1200 ]; then
    echo "guest-check: $1 holds fewer than $2 snapshots after 120 s: the agent is not cycling" >&2
    exit 1
  fi
}
snapshots() { ls "$1" 2>/dev/null | grep -c '\.json$'; }

# Runs the agent at 0.5 s cycles until DIR holds 5 snapshots: steady cycles
# whose cost the snapshots record. $1 = dir, $2 = stderr file, then VAR=value settings.
steady_cycles() {
  dir=$1; err=$2; shift 2
  env "$@" RDMA_MON_GENERAL__POLL_INTERVAL=0.5 RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=0.5 \
    RDMA_MON_GENERAL__SNAPSHOT_KEEP=0 RDMA_MON_GENERAL__SNAPSHOT_DIR="$dir" "$AGENT" 2>> "$err" &
  pid=$!
  wait_snapshots "$dir" 5
  kill -TERM $pid; wait $pid
}

kernel_view() { # $1 = phase prefix
  rdma -j statistic show > "$OUT/$1-stat.json"
  rdma -j link show > "$OUT/$1-link.json"
  rdma -j res show > "$OUT/$1-res.json"
  rdma -j dev show > "$OUT/$1-dev.json"
  ip -s -j link show > "$OUT/$1-ip-link.json"
  for p in /sys/class/infiniband/*/ports/*; do
    for f in "$p"/state "$p"/phys_state "$p"/rate "$p"/link_layer "$p"/hw_counters/*; do
      printf '%s\t%s\n' "$f" "$(cat "$f")"
    done
  done > "$OUT/$1-sysfs.txt"
}

# A: quiescent (the boot-time traffic is over). Agent, kernel tools, agent
# again: the counters must not have moved in between.
./nlrecord "$OUT/netlink" > "$OUT/a-nlrecord.log" 2>&1
rdma -j statistic show > "$OUT/a-netlink-stat.json"
"$AGENT" --once > "$OUT/a-agent.json" 2> "$OUT/a-agent.err"
kernel_view a
RDMA_MON_NETWORK__NETLINK=never "$AGENT" --once > "$OUT/a-agent-sysfs.json" 2>> "$OUT/a-agent.err"
"$AGENT" --once > "$OUT/a-agent-after.json" 2>> "$OUT/a-agent.err"

# Cost: a few steady cycles with netlink, and with sysfs only.
for mode in always never; do
  steady_cycles "$OUT/cost-$mode" "$OUT/a-agent.err" RDMA_MON_NETWORK__NETLINK=$mode
done

# B: traffic, then the same views again. A sysfs-only agent runs through
# it: its attribute files stay open and are re-read with pread, so its last
# cycle must show the counters after the traffic.
RDMA_MON_NETWORK__NETLINK=never RDMA_MON_GENERAL__POLL_INTERVAL=0.3 \
RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=600 RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/held" \
"$AGENT" 2> "$OUT/held.err" &
held=$!
sleep 1
rxe-traffic -t rc -n 50 > "$OUT/b-traffic.log" 2>&1
echo "traffic exit $?" >> "$OUT/b-traffic.log"
"$AGENT" --once > "$OUT/b-agent.json" 2> "$OUT/b-agent.err"
kernel_view b
sleep 1
kill -TERM $held; wait $held

# C: a running agent while rxe1 goes away and comes back.
RDMA_MON_PROMETHEUS__ENABLED=true RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 \
RDMA_MON_PROMETHEUS__PORT=9100 RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=0.5 RDMA_MON_GENERAL__SNAPSHOT_KEEP=0 \
RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snaps" "$AGENT" 2> "$OUT/c-agent.err" &
pid=$!
wait_snapshots "$OUT/snaps" 3
rdma link delete rxe1; echo "delete exit $?" > "$OUT/c-steps.log"
wait_snapshots "$OUT/snaps" $(( $(snapshots "$OUT/snaps") + 4 ))
if kill -0 $pid 2>/dev/null; then echo "alive after delete" >> "$OUT/c-steps.log"; fi
rdma link add rxe1 type rxe netdev veth1; echo "add exit $?" >> "$OUT/c-steps.log"
wait_snapshots "$OUT/snaps" $(( $(snapshots "$OUT/snaps") + 4 ))
if command -v wget >/dev/null; then
  wget -q -O "$OUT/c-metrics.txt" http://127.0.0.1:9100/metrics
fi
kill -TERM $pid; wait $pid; echo "agent exit $?" >> "$OUT/c-steps.log"
ls "$OUT" > /dev/null

# D: attribution. cgroup v2 with a Slurm-shaped and a kubepods-shaped
# (systemd driver, containerd) cgroup; the RC pingpong server in the first,
# the client in the second. The agent must attribute exactly one QP to each
# (compare.py checks it against `rdma res show qp` grouped by pid → cgroup),
# and once they exit, no consumer may remain.
. ./consumers.sh
start_consumers "$PWD/host" "$OUT/d-mount.err"
rdma -j -d res show qp > "$OUT/d-res-qp.json"
for p in $server $client; do
  printf '%s\t%s\n' $p "$(cat /proc/$p/cgroup)"
done > "$OUT/d-cgroups.txt"
export RDMA_MON_ATTRIBUTION__HOST_ROOT=$HOST
"$AGENT" --once > "$OUT/d-agent.json" 2> "$OUT/d-agent.err"
# The metrics, from a running agent's scrape (attribution every cycle). It
# keeps running through the PID reuse below, so its resolver has the
# server's PID cached as job 4242 when the PID comes back.
RDMA_MON_PROMETHEUS__ENABLED=true RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 \
RDMA_MON_PROMETHEUS__PORT=9101 RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
RDMA_MON_ATTRIBUTION__INTERVAL=0.5 RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=0.5 \
RDMA_MON_GENERAL__SNAPSHOT_KEEP=0 RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/d-snaps" \
"$AGENT" 2>> "$OUT/d-agent.err" &
dpid=$!
wait_snapshots "$OUT/d-snaps" 2
wget -q -O "$OUT/d-metrics.txt" http://127.0.0.1:9101/metrics
kill $server $client; wait $server $client 2>/dev/null
# PID reuse: a process in another cgroup (a systemd unit) takes the server's
# PID (ns_last_pid makes the next fork get it: CONFIG_CHECKPOINT_RESTORE)
# and holds a QP of its own. The agent must name the unit, not the job its
# cache remembers for that PID.
REUSE=$CG/system.slice/reuse.service
mkdir -p $REUSE
echo $((server - 1)) > /proc/sys/kernel/ns_last_pid
sh -c "echo \$\$ > $REUSE/cgroup.procs && exec ibv_rc_pingpong -d rxe1 -g 1 -n 100000000 -p 19997" > /dev/null 2>&1 &
reused=$!
printf '%s %s\n' $server $reused > "$OUT/d-reuse.txt"
sleep 1
rdma -j -d res show qp > "$OUT/d-reuse-qp.json"
wait_snapshots "$OUT/d-snaps" $(( $(snapshots "$OUT/d-snaps") + 3 ))
wget -q -O "$OUT/d-metrics-reuse.txt" http://127.0.0.1:9101/metrics
kill -TERM $dpid; wait $dpid
kill $reused; wait $reused 2>/dev/null
"$AGENT" --once > "$OUT/d-agent-after.json" 2>> "$OUT/d-agent.err"
# Cost of attribution on this node: steady cycles with it and without it.
for on in true false; do
  steady_cycles "$OUT/attr-$on" "$OUT/d-agent.err" RDMA_MON_ATTRIBUTION__ENABLED=$on
done
