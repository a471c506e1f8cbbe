#!/usr/bin/env bash
# make vm-strace: the agent's syscalls per steady cycle in the rxe VM,
# counted by strace (not by the agent's own counters), for the netlink path
# and for sysfs only, next to what the agent's self-accounting says.
# Host strace and its libraries are copied into the share (the guest runs
# Debian 12 glibc binaries). Results: target/vm-strace/out, summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
RUN=$TESTBED/rxe-vm/run.sh
. tests/skips.sh
[ -x "$RUN" ] || skip vm-strace "no rxe-vm test bed at $TESTBED/rxe-vm"
command -v strace >/dev/null || { echo "vm-strace: install strace (apt-get install strace)" >&2; exit 1; }
MUSL=x86_64-unknown-linux-musl
cargo build --release --target $MUSL --bin rdma-monitor
SHARE=target/vm-strace
rm -rf "$SHARE"; mkdir -p "$SHARE/lib"
cp ${CARGO_TARGET_DIR:-target}/$MUSL/release/rdma-monitor "$(command -v strace)" tests/vm/strace-guest.sh "$SHARE/"
ldd "$(command -v strace)" | awk '$3 ~ /^\// {print $3}' | xargs -I{} cp -L {} "$SHARE/lib/"
"$RUN" --quiet --timeout 600 --share "$SHARE" -- sh ./strace-guest.sh
python3 tests/vm/strace_count.py "$SHARE/out"
