SHELL := /bin/bash
# rdma-monitor — see README.md. Every target works on a fresh Debian 12 machine
# with only Rust: the targets install the Debian packages they need when
# missing (tests/deps.sh: apt-get as root, else one line naming them).

CARGO  ?= cargo
MUSL   := x86_64-unknown-linux-musl
TARGET := $(or $(CARGO_TARGET_DIR),target)
STATIC := $(TARGET)/$(MUSL)/release/rdma-monitor
# The bundled tree stands in for /sys when this node has no RDMA device.
DEMO_ROOT := $(shell ls /sys/class/infiniband 2>/dev/null | grep -q . && echo /sys || echo fixtures/sysfs/node-mixed)

# Each skipped test part adds a line here (tests/skips.sh, tests/common/mod.rs);
# make test prints them at its end.
export RDMA_MON_SKIPS := $(CURDIR)/target/test-skips.txt

.PHONY: all deps build static demo test test-parts bindings bindings-check unit-test vm-test vm-strace ibsim-test ibsim-scale deploy-test lint bench bench-render bench-compare bench-http bench-cadence hot-order measure fuzz release clean

all: build

build:
	@tests/deps.sh build
	$(CARGO) build --release

static:
	@tests/deps.sh static
	$(CARGO) build --release --target $(MUSL)
	@ls -l $(STATIC)

# Runs the agent in the foreground on 127.0.0.1 only (the default listen
# address is 0.0.0.0): http://127.0.0.1:9090/metrics, snapshots in ./snapshots.
demo: build
	@echo "rdma-monitor on $(DEMO_ROOT) — scrape http://127.0.0.1:9090/metrics, Ctrl-C to stop"
	RDMA_MON_GENERAL__SYSFS_ROOT=$(DEMO_ROOT) RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 \
	  $(TARGET)/release/rdma-monitor --config config.yaml

# Everything: lint, unit and end-to-end tests, then the agent in the rxe VM
# and under ibsim. A part that cannot run here is listed at the end, and
# under CI (CI set) fails the run.
test:
	@mkdir -p target && rm -f $(RDMA_MON_SKIPS)
	@rc=0; $(MAKE) --no-print-directory test-parts || rc=$$?; tests/skips.sh summary $$rc || rc=1; exit $$rc

test-parts: deps unit-test deploy-test vm-test ibsim-test

# The Debian packages, rustup pieces and Python tools make test uses.
deps:
	tests/deps.sh test

# Regenerates src/sys/uapi.rs from wrapper.h and this machine's kernel headers
# (build.rs, feature regen-bindings). bindings-check: is the committed file
# what wrapper.h gives (the header line naming the package may differ)?
bindings:
	tests/deps.sh bindings
	UAPI_HEADERS="linux-libc-dev $$(dpkg-query -W -f='$${Version}' linux-libc-dev)" \
	  $(CARGO) check --lib --features regen-bindings
	@sed -n 2p src/sys/uapi.rs

bindings-check: bindings
	git diff --exit-code -I '^// Headers: ' -I '^pub const LINUX_VERSION_(CODE|SUBLEVEL)' src/sys/uapi.rs

unit-test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets
	$(CARGO) test --doc

# The static agent in a Debian 6.1 kernel with Soft-RoCE, checked against
# rdma statistic/link/res/dev and sysfs in the same guest (tests/vm/).
vm-test:
	tests/vm/run.sh

# Syscalls per steady cycle counted by strace -f in the rxe VM, next to the
# agent's own accounting (tests/vm/strace.sh; not part of make test).
vm-strace:
	tests/vm/strace.sh

# Every install path: image (chroot when no engine), systemd unit, Kubernetes
# schemas, alert rule tests, dashboard against a scrape, a real Prometheus.
deploy-test:
	tests/deploy/run.sh

# The MAD layer under the ibsim fabric simulator, against perfquery and
# ibnetdiscover on the same fabric (tests/ibsim/).
ibsim-test:
	tests/ibsim/run.sh

# Fabric mode on fat trees of 18, 162 and 648 HCAs (tests/ibsim/fattree.py)
# under ibsim: sweep and counter times, MADs per port, CPU per MAD, against
# ibnetdiscover and ibqueryerrors on the same fabric (not part of make test).
ibsim-scale:
	tests/ibsim/scale.sh

# tests/layers.rs: no module imports a higher layer (also run by unit-test).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --test layers

bench:
	$(CARGO) bench --bench agent

# metrics-exporter-prometheus rendering the same 20,000 series as make bench's
# build_and_render_20k_series (its own crate: the agent never compiles it).
bench-render:
	cd tests/bench/render-compare && $(CARGO) run --release --locked

# The agent against node_exporter's infiniband collector, same tree, same cadence.
bench-compare: static
	python3 tests/bench/compare.py

# The agent and node_exporter under slowloris (64 connections, 60 s) and 200
# concurrent scrapers (30 s): answered scrapes, errors, p99, peak RSS.
bench-http: static
	@tests/deps.sh test
	python3 tests/bench/http_compare.py

# The shipped static agent, the floor program (tests/bench/floor.c: the same
# files held open, one pread each a second), floor + serve (the same reads,
# and each scrape answered with the agent's text, compressed once a second:
# an exporter with no parsing or rendering) and node_exporter side by side at
# the real cadence (a cycle and a scrape a second, 30 s), on the 16-HCA fixture
# and a 64-HCA tree made from it, each as it is and changing every second as a
# busy node's: CPU from schedstat, ratios to the floor, RSS.
bench-cadence: static
	@tests/deps.sh bench >/dev/null
	python3 tests/bench/cadence.py

# User-space instructions per cycle (collection thread) and per scrape (HTTP
# threads) under callgrind: repeatable where CPU time is not, to tell whether
# a change took work off the hot path. AGENT=a,b compares builds; KIND=changing
# moves the counters every second (rates and findings run); needs valgrind.
bench-instructions: static
	python3 tests/bench/instructions.py

# link/hot.order (build.rs links the static binary with it): the functions a
# steady agent runs, from a callgrind profile of the static build with its
# symbols. Again after a toolchain or dependency update (names carry hashes).
hot-order:
	$(CARGO) rustc --release --target $(MUSL) --bin rdma-monitor -- -C strip=none
	python3 link/hot-order.py
	$(CARGO) build --release --target $(MUSL)

# The static binary and its SHA256, in dist/.
release: static
	mkdir -p dist
	v=$$($(abspath $(STATIC)) --version | cut -d' ' -f2) && test -n "$$v" && \
	  cp $(STATIC) dist/rdma-monitor-$$v-x86_64-linux-musl
	cd dist && sha256sum rdma-monitor-*-x86_64-linux-musl > SHA256SUMS && cat SHA256SUMS

# Static binary size, and RSS/CPU of the static agent polling the bundled tree every 0.1 s for 10 s (RSS includes `timeout`, which is smaller).
measure: static
	@ls -l $(STATIC) | awk '{printf "static binary: %d bytes (%.2f MiB)\n", $$5, $$5/1048576}'
	@RDMA_MON_GENERAL__SYSFS_ROOT=fixtures/sysfs/node-mixed RDMA_MON_GENERAL__POLL_INTERVAL=0.1 \
	  RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 RDMA_MON_PROMETHEUS__PORT=19090 \
	  RDMA_MON_GENERAL__SNAPSHOT_DIR=$$(mktemp -d) \
	  /usr/bin/time -f "10 cycles/s for 10 s (100 cycles): max RSS %M KiB, user %U s, sys %S s" timeout -s TERM 10 $(STATIC) \
	  2>&1 | grep -v '^rdma-monitor: info' || true

# cargo-fuzz (libFuzzer) on the decoders, seeded with the recorded kernel replies.
# The stable toolchain is enough with RUSTC_BOOTSTRAP=1 (cargo fuzz passes -Z flags).
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/netlink_replies fuzz/corpus/sysfs_text fuzz/corpus/mad_replies fuzz/corpus/netdev_replies fuzz/corpus/deflate_round_trip fuzz/corpus/gzip_groups_round_trip
	cp fixtures/netlink/rxe-6.1/*.bin fuzz/corpus/netlink_replies/
	cp fixtures/netlink/rxe-6.1-net/*.bin fuzz/corpus/netdev_replies/
	# deflate: texts past 2^16 bytes (the hash keeps positions modulo 2^16) and many blocks.
	cp README.md fuzz/corpus/deflate_round_trip/
	cp README.md fuzz/corpus/gzip_groups_round_trip/
	cd fuzz && for t in netlink_replies sysfs_text mad_replies netdev_replies deflate_round_trip gzip_groups_round_trip; do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t --fuzz-dir . -- -max_total_time=$(FUZZ_SECONDS) $$( case $$t in deflate_round_trip|gzip_groups_round_trip) echo -max_len=262144;; esac ) 2>&1 | grep -E '^Done|DONE|ERROR|panicked' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

clean:
	$(CARGO) clean
