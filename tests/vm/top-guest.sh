#!/bin/sh
# In the rxe VM: `rdma-monitor top --batch 1 --detail` over one interval
# that holds a whole RC traffic burst, with `rdma statistic` read before the
# interval and after it (no traffic outside the burst), for top-check.py.
export RDMA_MON_GENERAL__SNAPSHOT_DIR=/tmp/snap
rdma -j statistic show link rxe0/1 > s_before.json
COLUMNS=160 ./rdma-monitor top --batch 1 --refresh 8 --detail > top.txt 2> top.err &
top=$!
sleep 1
rxe-traffic -t rc -n 300 > traffic.txt 2>&1
wait $top
rdma -j statistic show link rxe0/1 > s_after.json
