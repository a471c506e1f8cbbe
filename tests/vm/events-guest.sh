#!/bin/sh
# In the rxe VM, for events-check.py: the agent (poll and snapshot every
# 4 s, every snapshot kept in snaps/) sees, between two of its polls, rxe0's
# netdev go down and up twice within a second and a stand-in mlx5 line
# written to /dev/kmsg; in the next interval rxe0 is deleted and re-added
# (the kernel's own rxe/ib_core lines, kept in dmesg.txt). Two polls later
# its /snapshot and /metrics are saved.
set -u
ND=$(cat /sys/class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0)
echo "$ND" > netdev.txt
uname -r > uname.txt
PORT=9465
mkdir -p snaps
RDMA_MON_PROMETHEUS__ENABLED=true RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 \
RDMA_MON_PROMETHEUS__PORT=$PORT RDMA_MON_GENERAL__POLL_INTERVAL=4 \
RDMA_MON_GENERAL__SNAPSHOT_INTERVAL=4 RDMA_MON_GENERAL__SNAPSHOT_KEEP=0 \
RDMA_MON_GENERAL__SNAPSHOT_DIR=$PWD/snaps ./rdma-monitor 2> agent.err &
agent=$!
# One snapshot file per cycle (same interval), written right after it:
# waits for the $1th (a glob, no program run per look: under TCG the flap
# must start right after a poll to end before the next).
snaps_at_least() {
  i=0
  while :; do
    for f in snaps/snapshot-0000000$1-*.json; do [ -e "$f" ] && return 0; done
    i=$((i + 1)); [ $i -lt 600 ] || { echo "events-guest: no snapshot $1 after 30 s" >&2; return 1; }
    sleep 0.05
  done
}
snaps_at_least 1
# Between two polls: two flaps within a second, then the stand-in line.
date +%s%N > flap-start.txt
ip link set "$ND" down; ip link set "$ND" up
sleep 0.1
ip link set "$ND" down; ip link set "$ND" up
date +%s%N > flap-end.txt
echo "<3>mlx5_core 0000:5e:00.0: cmd_work_handler:877:(pid 0): ACCESS_REG(0x805) timeout. Will cause a leak of a command resource" > /dev/kmsg
snaps_at_least 2
# The next interval: rxe0 deleted and re-added.
echo "<6>events-guest: rdma link delete/add rxe0" > /dev/kmsg
rdma link delete rxe0
rdma link add rxe0 type rxe netdev "$ND"
dmesg > dmesg.txt
snaps_at_least 4
wget -q -O snapshot.json http://127.0.0.1:$PORT/snapshot
wget -q -O metrics.txt http://127.0.0.1:$PORT/metrics
kill -TERM $agent
wait $agent
echo "agent exit $?" > agent.rc
