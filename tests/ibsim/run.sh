#!/usr/bin/env bash
# make ibsim-test: the agent's MAD layer against the ibsim fabric simulator,
# with perfquery/ibnetdiscover on the same fabric as the oracle (compare.py).
# Needs the test bed (RDMA_MON_TESTBED, default ../shared/testbed, the
# project's shared/ folder beside the checkout): without it the part is
# recorded as skipped (tests/skips.sh), and under CI it fails.
# The preload only intercepts dynamically linked glibc programs: the test
# runs the ordinary (glibc) build, not the static musl one.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
IB=$TESTBED/ibsim
. tests/skips.sh
[ -x "$IB/start.sh" ] || skip ibsim-test "no ibsim test bed at $IB (set RDMA_MON_TESTBED to the folder that holds ibsim/)"
IB=$(cd "$IB" && pwd)
cargo build --release --bin rdma-monitor
AGENT=${CARGO_TARGET_DIR:-$REPO/target}/release/rdma-monitor
OUT=$REPO/target/ibsim-test
rm -rf "$OUT"; mkdir -p "$OUT"
export IBSIM_TB_DIR=${IBSIM_TB_DIR:-/tmp/rdma-monitor-ibsim}
export IBSIM_SOCKNAME=${IBSIM_SOCKNAME:-rdmamon$$}
"$IB/stop.sh" >/dev/null 2>&1 || true
"$IB/start.sh" > "$OUT/start.log"
trap '"$IB/stop.sh" >/dev/null 2>&1 || true' EXIT
. "$IBSIM_TB_DIR/env"
unset LD_PRELOAD # only the programs under test get it
PRELOAD=$(grep -o 'LD_PRELOAD=[^ ]*' "$IBSIM_TB_DIR/env" | head -1 | cut -d= -f2)
RUN=$IBSIM_TB_DIR/run; mkdir -p "$RUN"
EMPTY=$OUT/no-sysfs; mkdir -p "$EMPTY"

agent() { # agent NAME ARGS... : the agent under the preload, output to $OUT/NAME
  local name=$1; shift
  (cd "$RUN" && env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node01 \
    RDMA_MON_GENERAL__SYSFS_ROOT="$EMPTY" RDMA_MON_NETWORK__NETLINK=never \
    RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 RDMA_MON_FABRIC__ENABLED=true \
    RDMA_MON_FABRIC__TIMEOUT_MS=100 RDMA_MON_FABRIC__RETRIES=2 \
    RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/fabric-detail" RDMA_MON_FABRIC__DETAIL_KEEP=1000 \
    timeout 60 "$AGENT" "$@" > "$OUT/$name" 2> "$OUT/$name.err" && rc=0 || rc=$?; echo $rc > "$OUT/$name.rc")
}

"$IB/ctl.sh" "!$IB/counters.cmds" > /dev/null
# 1. Topology and counters, bracketed by the oracle before and after.
"$IB/golden.sh" "$OUT/golden-before" > /dev/null 2>&1
agent topology.txt topology
# A sweep cut short by its budget is partial: exit 4 with the reason on stderr.
RDMA_MON_FABRIC__SWEEP_BUDGET=0.000001 agent topology-cut.txt topology
agent once.json --once
"$IB/golden.sh" "$OUT/golden-after" --counters-only > /dev/null 2>&1
# The fabric in a scrape: a running agent, scraped once, checked by promtool.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# exec: the kill below then reaches timeout, which passes it on to the
# agent (a killed subshell left both running until the timeout).
(cd "$RUN" && exec env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node01 \
  RDMA_MON_GENERAL__SYSFS_ROOT="$EMPTY" RDMA_MON_NETWORK__NETLINK=never \
  RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 RDMA_MON_FABRIC__ENABLED=true \
  RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 RDMA_MON_PROMETHEUS__PORT=$PORT \
  RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snaps" RDMA_MON_GENERAL__POLL_INTERVAL=0.5 \
  timeout 30 "$AGENT" > /dev/null 2> "$OUT/server.err") &
server=$!
for _ in $(seq 1 50); do
  sleep 0.2
  if curl -sf "http://127.0.0.1:$PORT/metrics" -o "$OUT/metrics.txt" && grep -q rdma_fabric_port_symbol_errors_total "$OUT/metrics.txt"; then break; fi
done
# The last sweep whole, as rdma-monitor top --url reads it.
curl -sf "http://127.0.0.1:$PORT/fabric" -o "$OUT/fabric.json" || true
kill -TERM $server 2>/dev/null; wait $server || true
# MADs per cycle for the local port and its far end (no fabric mode):
# two scrapes two seconds apart, the difference divided by the cycles run.
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$RUN" && exec env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node01 \
  RDMA_MON_GENERAL__SYSFS_ROOT="$EMPTY" RDMA_MON_NETWORK__NETLINK=never \
  RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 \
  RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 RDMA_MON_PROMETHEUS__PORT=$PORT2 \
  RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snaps-local" RDMA_MON_GENERAL__POLL_INTERVAL=0.2 \
  timeout 30 "$AGENT" > /dev/null 2> "$OUT/local.err") &
server=$!
sleep 1.5; curl -sf "http://127.0.0.1:$PORT2/metrics" -o "$OUT/local-metrics-1.txt" || true
sleep 2; curl -sf "http://127.0.0.1:$PORT2/metrics" -o "$OUT/local-metrics-2.txt" || true
kill -TERM $server 2>/dev/null; wait $server || true
# 2. A saturated 16-bit counter.
"$IB/ctl.sh" 'PerformanceSet "node02"[1] PortCounters.SymbolErrorCounter=65535' > /dev/null
agent saturated.json --once
# 3. 30 % of the MADs to node04 port 1 dropped.
"$IB/ctl.sh" 'Error "node04"[1] 30' > /dev/null
agent drop30.json --once
"$IB/ctl.sh" 'Error "node04"[1] 0' > /dev/null
# 4. A cable pulled (node03), then put back.
"$IB/ctl.sh" 'Unlink "node03"[1]' > /dev/null
(cd "$RUN" && env LD_PRELOAD="$PRELOAD" SIM_HOST=node01 timeout 30 ibnetdiscover > "$OUT/unlinked-ibnetdiscover.txt" 2>/dev/null) || true
agent unlinked-topology.txt topology
"$IB/ctl.sh" 'ReLink "node03"[1]' > /dev/null
"$IB/sm.sh" > /dev/null 2>&1 || true
agent relinked-topology.txt topology
# 5. Nothing answers the local port: every MAD to it is dropped.
"$IB/ctl.sh" 'Error "node01"[1] 100' > /dev/null
start=$(date +%s%N)
agent silent.json --once
echo $(( ($(date +%s%N) - start) / 1000000 )) > "$OUT/silent.ms"
"$IB/ctl.sh" 'Error "node01"[1] 0' > /dev/null
# Sweep time against ibnetdiscover's, same fabric, same preload.
timed() { # timed FILE CMD... : appends the wall time in ns
  local f=$1; shift
  local t0; t0=$(date +%s%N)
  (cd "$RUN" && env LD_PRELOAD="$PRELOAD" SIM_HOST=node01 RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 "$@" > /dev/null 2>&1)
  echo $(( $(date +%s%N) - t0 )) >> "$OUT/$f"
}
for i in 1 2 3 4 5; do
  timed ibnetdiscover.ns ibnetdiscover
  timed agent.ns "$AGENT" topology
done
rc=0
python3 tests/ibsim/compare.py "$OUT" || rc=1
# Fabric verdicts: cables pulled and narrowed between sweeps, hot spots, an
# unreadable port, fabric.expected_topology (tests/ibsim/verdicts.sh).
. tests/ibsim/verdicts.sh
python3 tests/ibsim/verdicts.py "$OUT" || rc=1
exit $rc
