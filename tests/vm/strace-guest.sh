#!/bin/sh
# Runs in the rxe VM (tests/vm/strace.sh): the static agent under strace -f,
# 0.5 s cycles for 30 s, no rescans after discovery, no HTTP server, no
# periodic snapshots (one is written at SIGTERM and carries the agent's own
# count of its last cycle). strace slows every syscall (more so under TCG),
# hence the long run: discovery alone reads a few thousand files.
set -u
OUT=$PWD/out
rm -rf "$OUT"; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib RDMA_MON_PROMETHEUS__ENABLED=false
for mode in always never; do
  RDMA_MON_NETWORK__NETLINK=$mode RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
  RDMA_MON_GENERAL__RESCAN_INTERVAL=3600 \
  RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=3600 RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snap-$mode" \
  ./strace -f -qq -o "$OUT/trace-$mode.txt" ./rdma-monitor 2> "$OUT/agent-$mode.err" &
  pid=$!
  sleep 30
  kill -TERM $(pidof rdma-monitor); wait $pid
done
ls /sys/class/infiniband > "$OUT/devices.txt"
