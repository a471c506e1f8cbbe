#!/bin/sh
# Runs in the rxe VM (tests/vm/strace.sh): the static agent at 0.5 s cycles,
# no rescans after discovery, no HTTP server, no periodic snapshots (one is
# written at SIGTERM and carries the agent's own count of its last cycle).
# strace attaches to all its threads once discovery is over (strace makes
# each syscall slow, more so under TCG: discovery reads a few thousand GID
# files) and the allocator has settled (musl's mallocng maps and unmaps a
# group per allocation in a size class that empties and fills again, until
# its bounce counter, within the first few dozen cycles, keeps the group),
# twice: -f with every call written out, then -c -f for the table.
# Then 14 more rxe devices on 7 more veth pairs, and the netlink path again
# (run "always16"): the count per port at 2 and at 16 devices.
set -u
OUT=$PWD/out
rm -rf "$OUT"; mkdir -p "$OUT"
export RDMA_MON_PROMETHEUS__ENABLED=false
trace() { # trace RUN NETLINK_MODE
  local run=$1 mode=$2
  RDMA_MON_NETWORK__NETLINK=$mode RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
  RDMA_MON_GENERAL__RESCAN_INTERVAL=3600 \
  RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=3600 RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snap-$run" \
  ./rdma-monitor 2> "$OUT/agent-$run.err" &
  agent=$!
  sleep 30
  for how in "-o $OUT/trace-$run.txt" "-c -o $OUT/summary-$run.txt"; do
    LD_LIBRARY_PATH=$PWD/lib ./strace -f -qq $how -p $agent &
    tracer=$!
    sleep 15
    kill -INT $tracer; wait $tracer
  done
  kill -TERM $agent; wait $agent
  ls /sys/class/infiniband > "$OUT/devices-$run.txt"
}
trace always always
trace never never
for i in 2 4 6 8 10 12 14; do
  j=$((i + 1))
  ip link add veth$i type veth peer name veth$j && ip link set veth$i up && ip link set veth$j up &&
    rdma link add rxe$i type rxe netdev veth$i && rdma link add rxe$j type rxe netdev veth$j ||
    echo "rxe$i/rxe$j: not created" >> "$OUT/setup16.err"
done
trace always16 always
cat /sys/devices/system/clocksource/clocksource0/current_clocksource > "$OUT/clocksource.txt"
