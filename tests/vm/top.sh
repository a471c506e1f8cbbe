#!/usr/bin/env bash
# rdma-monitor top in the rxe VM (part of make vm-test; one boot): its rates
# locally and through a running agent's /snapshot (batch, and interactive in
# tmux) against `rdma statistic` deltas over a traffic burst, and the
# consumers view against `rdma res show qp` (tests/vm/top-guest.sh, checked
# by top-check.py). The host's tmux and its libraries are copied into the
# share (the guest runs Debian 12 glibc binaries and has no tmux).
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTBED=${RDMA_MON_TESTBED:-../shared/testbed}
RUN=$TESTBED/rxe-vm/run.sh
. tests/skips.sh
[ -x "$RUN" ] || skip vm-top "no rxe-vm test bed at $TESTBED/rxe-vm"
command -v tmux >/dev/null || { echo "vm-top: install tmux (apt-get install tmux)" >&2; exit 1; }
MUSL=x86_64-unknown-linux-musl
cargo build --release --target $MUSL --bin rdma-monitor
SHARE=target/vm-share-top
rm -rf "$SHARE"; mkdir -p "$SHARE/lib" "$SHARE/locale"
cp ${CARGO_TARGET_DIR:-target}/$MUSL/release/rdma-monitor "$(command -v tmux)" tests/vm/top-guest.sh tests/vm/consumers.sh "$SHARE/"
# Only the libraries the guest lacks: its own libc must stay with its own ld.so.
ldd "$(command -v tmux)" | awk '$3 ~ /^\// {print $3}' | grep -Ev '/lib(c|m|resolv)\.so' |
  xargs -I{} cp -L {} "$SHARE/lib/"
# tmux needs a UTF-8 locale; the guest has none.
cp -r /usr/lib/locale/C.utf8 "$SHARE/locale/"
"$RUN" --quiet --timeout 300 --traffic 0 --share "$SHARE" -- sh ./top-guest.sh
python3 tests/vm/top-check.py "$SHARE"
