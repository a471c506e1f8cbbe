#!/usr/bin/env bash
# make ibsim-scale: fabric mode on two-level fat trees of 36-port switches
# (tests/ibsim/fattree.py: 18, 162 and 648 HCAs; SIZES to change) under ibsim,
# against ibnetdiscover -o 16 and ibqueryerrors --counters --skip-sl (no SA
# runs: OpenSM configures the fabric once and exits) on the same fabric
# through the same preload. Per size: the agent's --once run (one sweep and
# one read of every port's counters; its snapshot says how long each took and
# how many MADs it sent), its CPU (user+sys of the process, start-up
# included), the sizes of the main snapshot and of the sweep's fabric detail
# file, the load average, and the two tools' wall time (best of 3).
# The glibc build: the preload only intercepts dynamically linked programs.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
IB=$TESTBED/ibsim
. tests/skips.sh
[ -x "$IB/start.sh" ] || skip ibsim-scale "no ibsim test bed at $IB (set RDMA_MON_TESTBED to the folder that holds ibsim/)"
IB=$(cd "$IB" && pwd)
cargo build --release --bin rdma-monitor
AGENT=${CARGO_TARGET_DIR:-$REPO/target}/release/rdma-monitor
OUT=$REPO/target/ibsim-scale
rm -rf "$OUT"; mkdir -p "$OUT"
export IBSIM_TB_DIR=${IBSIM_TB_DIR:-/tmp/rdma-monitor-ibsim-scale}
export IBSIM_SOCKNAME=${IBSIM_SOCKNAME:-rdmamonscale$$}
export SIM_HOST=node001 IBSIM_SM_HOST=node001 IBSIM_TB_TIMEOUT=${IBSIM_TB_TIMEOUT:-120}
trap '"$IB/stop.sh" >/dev/null 2>&1 || true' EXIT
EMPTY=$OUT/no-sysfs; mkdir -p "$EMPTY"
for n in ${SIZES:-18 162 648}; do
  d=$OUT/$n; mkdir -p "$d"
  python3 tests/ibsim/fattree.py "$n" > "$d/fabric.topo"
  "$IB/stop.sh" >/dev/null 2>&1 || true
  "$IB/start.sh" "$d/fabric.topo" > "$d/start.log"
  cat /proc/loadavg > "$d/load"
  PRELOAD=$(grep -o 'LD_PRELOAD=[^ ]*' "$IBSIM_TB_DIR/env" | head -1 | cut -d= -f2)
  RUN=$IBSIM_TB_DIR/run; mkdir -p "$RUN"
  under() { (cd "$RUN" && env LD_PRELOAD="$PRELOAD" IBSIM_SOCKNAME="$IBSIM_SOCKNAME" SIM_HOST=node001 "$@"); }
  timed() { # timed NAME CMD... : wall ns appended to NAME.ns, output to NAME.out
    local name=$1; shift
    local t0; t0=$(date +%s%N)
    under timeout 300 "$@" > "$d/$name.out" 2> "$d/$name.err" || echo "$name: exit $?" >> "$d/errors.txt"
    echo $(( $(date +%s%N) - t0 )) >> "$d/$name.ns"
  }
  for _ in 1 2 3; do
    timed ibnetdiscover ibnetdiscover -o 16
    # --skip-sl: OpenSM ran once and left, so there is no SA to ask for path SLs.
    timed ibqueryerrors ibqueryerrors --counters --skip-sl
    timed agent /usr/bin/time -f '%U %S' -o "$d/agent.cpu.tmp" env \
      RDMA_MON_GENERAL__SYSFS_ROOT="$EMPTY" RDMA_MON_NETWORK__NETLINK=never \
      RDMA_MON_FABRIC__UMAD_DEVICE=/dev/infiniband/umad0 RDMA_MON_FABRIC__ENABLED=true \
      RDMA_MON_GENERAL__SNAPSHOT_DIR="$d/snaps" "$AGENT" --once
    cat "$d/agent.cpu.tmp" >> "$d/agent.cpu"
  done
  cat /proc/loadavg >> "$d/load"
done
python3 tests/ibsim/scale_report.py "$OUT" ${SIZES:-18 162 648}
