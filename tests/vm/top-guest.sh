#!/bin/sh
# In the rxe VM, for top-check.py (one boot, three parts):
# 1. local: `rdma-monitor top --batch 1 --detail` over one interval that
#    holds a whole RC traffic burst, `rdma statistic` read before and after
#    (no traffic outside the burst);
# 2. remote: the agent serving HTTP here, and over one second burst both
#    `top --url --batch 1 --detail` and the interactive `top --url` in tmux
#    (the host's Debian 12 tmux and its three libraries, carried in the
#    share: the guest has no tmux, `script` or pty tool), its detail pane
#    captured, then `q`; the terminal's state after it exits;
# 3. consumers: the RC pingpong server and client in a Slurm-shaped and a
#    kubepods-shaped cgroup (as guest-check.sh), `top --batch 1 --view
#    consumers` and `rdma res show qp` while they hold their QPs.
set -u
export RDMA_MON_GENERAL__SNAPSHOT_DIR=/tmp/snap
stat_now() { rdma -j statistic show link rxe0/1 > "$1"; }

# 1. local
stat_now s_before.json
COLUMNS=160 ./rdma-monitor top --batch 1 --refresh 8 --detail > top.txt 2> top.err &
top=$!
sleep 1
rxe-traffic -t rc -n 300 > traffic.txt 2>&1
wait $top
stat_now s_after.json

# 2. remote
PORT=9464
RDMA_MON_PROMETHEUS__ENABLED=true RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 \
RDMA_MON_PROMETHEUS__PORT=$PORT RDMA_MON_GENERAL__POLL_INTERVAL=1 \
RDMA_MON_GENERAL__SNAPSHOT_DIR=/tmp/snap-agent ./rdma-monitor 2> agent.err &
agent=$!
i=0
until wget -q -O /dev/null http://127.0.0.1:$PORT/snapshot 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 600 ] || { echo "top-guest: the agent never served /snapshot" >&2; break; }
  sleep 0.1
done
URL=http://127.0.0.1:$PORT
# The host's C.UTF-8 locale: tmux refuses to start without a UTF-8 one.
tmux() { LD_LIBRARY_PATH=$PWD/lib LOCPATH=$PWD/locale LC_ALL=C.UTF-8 ./tmux -S /tmp/top-tmux "$@"; }
stat_now u_before.json
tmux new-session -d -x 120 -y 36 \
  "./rdma-monitor top --url $URL --refresh 10; echo \"exit \$?\" > url-int.rc; stty -a > url-int.stty; sleep 60" \
  2> tmux.err
COLUMNS=160 ./rdma-monitor top --url $URL --batch 1 --refresh 10 --detail > url.txt 2> url.err &
top=$!
sleep 2
# Enter opens the selected row's detail pane (the first row: rxe0/1).
tmux send-keys Enter
rxe-traffic -t rc -n 200 > url-traffic.txt 2>&1
wait $top
# The interactive top's second sample is due about when the batch one's
# was: wait for its rates (at most 5 s; its third sample is 10 s away).
i=0
while ! tmux capture-pane -p > url-int.txt 2>> tmux.err || ! grep -q 'rates over' url-int.txt; do
  i=$((i + 1)); [ $i -lt 50 ] || break
  sleep 0.1
done
stat_now u_after.json
tmux send-keys q
i=0
while [ ! -s url-int.rc ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
tmux kill-server 2>/dev/null
kill -TERM $agent; wait $agent; echo "agent exit $?" >> agent.err

# 3. consumers
. ./consumers.sh
start_consumers /tmp/host c-mount.err
rdma -j -d res show qp > c-res-qp.json
for p in $server $client; do printf '%s\t%s\n' $p "$(cat /proc/$p/cgroup)"; done > c-cgroups.txt
RDMA_MON_ATTRIBUTION__HOST_ROOT=$HOST COLUMNS=120 \
  ./rdma-monitor top --batch 1 --refresh 1 --view consumers > consumers.txt 2> consumers.err
rdma -j -d res show qp > c-res-qp-after.json
kill $server $client; wait $server $client 2>/dev/null
exit 0
