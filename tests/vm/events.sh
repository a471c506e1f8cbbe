#!/usr/bin/env bash
# Events between polls in the rxe VM (part of make vm-test; one short boot,
# no boot-time traffic): a double carrier flap of rxe0's netdev between two
# polls, a line written to /dev/kmsg, and rxe0 deleted and re-added, seen
# by the static agent (tests/vm/events-guest.sh, checked by events-check.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
RUN=$TESTBED/rxe-vm/run.sh
. tests/skips.sh
[ -x "$RUN" ] || skip vm-events "no rxe-vm test bed at $TESTBED/rxe-vm"
MUSL=x86_64-unknown-linux-musl
cargo build --release --target $MUSL --bin rdma-monitor
SHARE=target/vm-share-events
rm -rf "$SHARE"; mkdir -p "$SHARE"
cp ${CARGO_TARGET_DIR:-target}/$MUSL/release/rdma-monitor tests/vm/events-guest.sh "$SHARE/"
"$RUN" --quiet --timeout 240 --traffic 0 --share "$SHARE" -- sh ./events-guest.sh
python3 tests/vm/events-check.py "$SHARE"
