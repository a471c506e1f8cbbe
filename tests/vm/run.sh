#!/usr/bin/env bash
# make vm-test: the static agent in the rxe VM, checked against the kernel's
# own tools in the same guest (see guest-check.sh and compare.py).
# Needs the test bed (RDMA_MON_TESTBED, default ../shared/testbed, the
# project's shared/ folder beside the checkout): without it the part is
# recorded as skipped (tests/skips.sh), and under CI it fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
RUN=$TESTBED/rxe-vm/run.sh
. tests/skips.sh
[ -x "$RUN" ] || skip vm-test "no rxe-vm test bed at $TESTBED/rxe-vm (set RDMA_MON_TESTBED to the folder that holds rxe-vm/)"
MUSL=x86_64-unknown-linux-musl
cargo build --release --target $MUSL --bin rdma-monitor --example nlrecord
SHARE=target/vm-share
rm -rf "$SHARE"; mkdir -p "$SHARE"
T=${CARGO_TARGET_DIR:-target}
cp $T/$MUSL/release/rdma-monitor $T/$MUSL/release/examples/nlrecord tests/vm/guest-check.sh tests/vm/consumers.sh "$SHARE/"
"$RUN" --quiet --timeout 600 --share "$SHARE" -- sh ./guest-check.sh
python3 tests/vm/compare.py "$SHARE/out"
# rdma-monitor top (local, --url batch and interactive in tmux, consumers)
# against rdma statistic deltas over traffic bursts and rdma res (a second boot).
tests/vm/top.sh
# Events between polls: a double carrier flap, a /dev/kmsg line and rxe0
# deleted and re-added, seen by the agent (a short third boot, no traffic).
tests/vm/events.sh
# Syscalls per port per cycle counted by strace in the guest, at 2 and at 16
# rxe devices, with threads created and clock_gettime calls (a second boot).
tests/vm/strace.sh
