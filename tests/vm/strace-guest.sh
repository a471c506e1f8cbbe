#!/bin/sh
# Runs in the rxe VM (tests/vm/strace.sh): the static agent at 0.5 s cycles,
# no rescans after discovery, no HTTP server, no periodic snapshots (one is
# written at SIGTERM and carries the agent's own count of its last cycle).
# strace attaches to all its threads once discovery is over (strace makes
# each syscall slow, more so under TCG: discovery reads a few thousand GID
# files), twice: -f with every call written out, then -c -f for the table.
set -u
OUT=$PWD/out
rm -rf "$OUT"; mkdir -p "$OUT"
export RDMA_MON_PROMETHEUS__ENABLED=false
for mode in always never; do
  RDMA_MON_NETWORK__NETLINK=$mode RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
  RDMA_MON_GENERAL__RESCAN_INTERVAL=3600 \
  RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=3600 RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snap-$mode" \
  ./rdma-monitor 2> "$OUT/agent-$mode.err" &
  agent=$!
  sleep 10
  for how in "-o $OUT/trace-$mode.txt" "-c -o $OUT/summary-$mode.txt"; do
    LD_LIBRARY_PATH=$PWD/lib ./strace -f -qq $how -p $agent &
    tracer=$!
    sleep 15
    kill -INT $tracer; wait $tracer
  done
  kill -TERM $agent; wait $agent
done
ls /sys/class/infiniband > "$OUT/devices.txt"
cat /sys/devices/system/clocksource/clocksource0/current_clocksource > "$OUT/clocksource.txt"
