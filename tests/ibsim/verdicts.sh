#!/usr/bin/env bash
# Fabric verdicts under ibsim, sourced by tests/ibsim/run.sh (needs its
# agent(), $IB, $OUT, $RUN, $PRELOAD, $AGENT, $EMPTY). Each step's findings
# are recorded in $OUT/verdicts/; tests/ibsim/verdicts.py checks them.
#  A. A running agent in fabric mode (a sweep a second), no expected file:
#     Unlink an inter-switch link and an HCA link (then sm.sh), ReLink them,
#     narrow a link to 1x, raise a switch port's symbol errors, drop a port's
#     PortCounters MADs, pull the ISL without re-running OpenSM (LID routes
#     through a dead link). After each step, the scrape's rdma_finding series
#     are waited for (at most 30 s) and kept.
#  B. --once runs with fabric.expected_topology: the fabric's own
#     ibnetdiscover output, the same with one link more than the fabric, a
#     broken file, and the narrowed link against the file.
V=$OUT/verdicts
mkdir -p "$V"
under() { (cd "$RUN" && env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node01 timeout 30 "$@"); }
under ibnetdiscover 2>/dev/null | sed 's/generated on .*/generated on DATE/' > "$V/expected.topo"

# --- A. between sweeps ---
VPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# exec: the kill below then reaches timeout, which passes it on to the
# agent (a killed subshell left both running until the timeout).
(cd "$RUN" && exec env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node01 \
  RDMA_MON_GENERAL__SYSFS_ROOT="$EMPTY" RDMA_MON_NETWORK__NETLINK=never \
  RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 RDMA_MON_FABRIC__ENABLED=true \
  RDMA_MON_FABRIC__INTERVAL=1 RDMA_MON_FABRIC__TIMEOUT_MS=100 \
  RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 RDMA_MON_PROMETHEUS__PORT=$VPORT \
  RDMA_MON_GENERAL__SNAPSHOT_DIR="$V/snaps" RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
  timeout 300 "$AGENT" > /dev/null 2> "$V/agent.err") &
vserver=$!
# wait_for NAME PYTHON-CONDITION: scrapes until the condition on the list of
# rdma_finding label dicts `f` holds (at most 30 s); keeps the last scrape.
wait_for() {
  local name=$1 cond=$2
  for _ in $(seq 1 150); do
    sleep 0.2
    curl -sf "http://127.0.0.1:$VPORT/metrics" -o "$V/$name.prom" || continue
    if python3 - "$V/$name.prom" "$cond" <<'EOF'
import re, sys
f = [dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', l)) for l in open(sys.argv[1]) if l.startswith("rdma_finding{")]
swept = any(l.startswith("rdma_fabric_nodes{") for l in open(sys.argv[1]))
sys.exit(0 if swept and eval(sys.argv[2]) else 1)
EOF
    then echo ok > "$V/$name.waited"; return 0; fi
  done
  echo "timed out waiting for: $cond" > "$V/$name.waited"
}
ids='[x["id"] for x in f]'
wait_for a0-baseline "not [i for i in $ids if i.startswith('fabric_')]"
"$IB/ctl.sh" 'Unlink "leaf1"[7]' 'Unlink "node03"[1]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
wait_for a1-unlinked "$ids.count('fabric_link_lost') >= 2 and 'fabric_node_lost' in $ids"
"$IB/ctl.sh" 'ReLink "leaf1"[7]' 'ReLink "node03"[1]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
wait_for a2-relinked "'fabric_link_lost' not in $ids and 'fabric_node_lost' not in $ids"
under ibportstate 1 7 width 1 > "$V/ibportstate-1x.txt" 2>&1 || true
wait_for a3-narrowed "'fabric_link_degraded' in $ids"
under ibportstate 1 7 width 3 > "$V/ibportstate-4x.txt" 2>&1 || true
wait_for a4-widened "'fabric_link_degraded' not in $ids"
# Symbol errors on leaf2 port 3 (node05's second cable), 5000 more than before.
"$IB/ctl.sh" 'PerformanceSet "leaf2"[3] PortCounters.SymbolErrorCounter=5000' > /dev/null
wait_for a5-symbol-errors "'fabric_port_errors' in $ids"
# PortCounters (attribute 0x12 = 18) MADs into node04 port 1 all dropped.
"$IB/ctl.sh" 'Error "node04"[1] 100 18' > /dev/null
wait_for a6-unreadable "'fabric_port_unreadable' in $ids"
"$IB/ctl.sh" 'Error "node04"[1] 0' > /dev/null
wait_for a7-readable "'fabric_port_unreadable' not in $ids"
# The ISL pulled and OpenSM not run again: the switches' forwarding tables
# still send some LIDs through the dead cable, so their PMA reads time out.
"$IB/ctl.sh" 'Unlink "leaf1"[7]' > /dev/null
"$IB/ctl.sh" 'Route 2 3' > "$V/route-2-3.txt" 2>&1 || true
wait_for a8-dead-route "'fabric_port_unreadable' in $ids"
"$IB/ctl.sh" 'ReLink "leaf1"[7]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
wait_for a9-routed "not [i for i in $ids if i in ('fabric_port_unreadable', 'fabric_link_lost')]"
kill -TERM $vserver 2>/dev/null; wait $vserver || true

# --- B. against fabric.expected_topology, one sweep each ---
expect() { # expect NAME FILE: the agent --once with that expected topology
  local name=$1 file=$2
  RDMA_MON_FABRIC__EXPECTED_TOPOLOGY=$file agent "verdicts/$name.json" --once
}
expect b0-same "$V/expected.topo"
# One link more than the fabric: the file is the whole fabric, leaf1[8] is pulled.
"$IB/ctl.sh" 'Unlink "leaf1"[8]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
expect b1-one-more "$V/expected.topo"
"$IB/ctl.sh" 'ReLink "leaf1"[8]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
printf 'caguid=0x1\nCa 1 "H-1"\n[1] "nobody"[1]\n' > "$V/broken.topo"
expect b2-broken "$V/broken.topo"
under ibportstate 1 7 width 1 > /dev/null 2>&1 || true
expect b3-narrowed "$V/expected.topo"
under ibportstate 1 7 width 3 > /dev/null 2>&1 || true
