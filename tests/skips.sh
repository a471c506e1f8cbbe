#!/usr/bin/env bash
# Skipped test parts, made visible. A part that cannot run here (no test bed,
# not root, a tool missing) records one line, "<part>: <why>", in the skip
# file; `make test` empties it first and prints it last (`tests/skips.sh
# summary`). Under CI (CI set) a skip is a failure: the part exits 1.
# The Rust tests do the same through tests/common/mod.rs.
#   . tests/skips.sh; skip vm-test "no rxe-vm test bed at $TESTBED"
#   tests/skips.sh summary [STATUS]
SKIPS=${RDMA_MON_SKIPS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/test-skips.txt}

skip() { # skip PART WHY: records the skip and exits the part (1 under CI, else 0)
  echo "################################################################" >&2
  echo "## SKIPPED $1: $2" >&2
  echo "################################################################" >&2
  mkdir -p "$(dirname "$SKIPS")"
  echo "$1: $2" >> "$SKIPS"
  [ -z "${CI:-}" ] || { echo "$1: skipped under CI, which must run every part" >&2; exit 1; }
  exit 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = summary ]; then
  # summary [STATUS]: STATUS is make's exit status for the parts; after a
  # failure the parts behind the failing one did not run at all.
  status=${2:-0}
  if [ "$status" -ne 0 ]; then
    echo "== make test: FAILED (exit $status, see above); the parts after the failing one did not run"
  fi
  if [ ! -s "$SKIPS" ]; then
    [ "$status" -ne 0 ] || echo "== make test: every part ran, nothing skipped"
    exit 0
  fi
  echo "################################################################"
  echo "## make test: $(wc -l < "$SKIPS") part(s) SKIPPED, not tested here:"
  sed 's/^/##   /' "$SKIPS"
  echo "################################################################"
  [ -z "${CI:-}" ] || { echo "make test: skips fail the run under CI" >&2; exit 1; }
fi
