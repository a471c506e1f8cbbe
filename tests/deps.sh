#!/usr/bin/env bash
# What the make targets need beyond the Rust toolchain, installed when missing.
#   tests/deps.sh build     a C compiler and linker: rustc links with `cc`, and
#                           ring (rustls, for HTTPS) compiles C
#   tests/deps.sh static    build + musl-tools (ring's C for the musl target)
#   tests/deps.sh test      static + everything `make test` runs
#   tests/deps.sh ci        test + what .ci/run adds (make measure, bench-compare)
#   tests/deps.sh bench     test + what make bench-cadence adds (ISA-L's igzip
#                           for its floor + serve)
#   tests/deps.sh bindings  libclang-dev and linux-libc-dev, for `make bindings`
# As root, apt-get installs the missing Debian packages; otherwise one line
# names them and the script exits 1. Rust pieces come from rustup, the
# Kubernetes schema validator from PyPI into target/pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}
pkgs=()
need() { pkgs+=("$1"); }
has() { command -v "$1" >/dev/null 2>&1; }

case "$what" in build | static | test | ci | bench | bindings) ;; *) echo "usage: $0 build|static|test|ci|bench|bindings" >&2; exit 2 ;; esac

if [ "$what" = bindings ]; then
  # clang-sys loads libclang.so (libclang-dev), not libclang-cpp.so.
  compgen -G '/usr/lib/llvm-*/lib/libclang.so' >/dev/null || need libclang-dev
  [ -e /usr/include/linux/version.h ] || need linux-libc-dev
else
  has cc || need gcc
  [ -e /usr/include/stdlib.h ] || need libc6-dev
fi
[ "$what" = build ] || [ "$what" = bindings ] || has musl-gcc || need musl-tools
if [ "$what" = test ] || [ "$what" = ci ] || [ "$what" = bench ]; then
  has promtool || need prometheus                   # e2e: promtool check metrics; deploy-test
  has python3 || need python3                       # test scripts and oracles
  python3 -c 'import yaml' 2>/dev/null || need python3-yaml
  python3 -c 'import jsonschema' 2>/dev/null || need python3-jsonschema
  has kubernetes-validate || [ -x target/pyenv/bin/kubernetes-validate ] ||
    python3 -c 'import ensurepip' 2>/dev/null || need python3-venv
  has curl || need curl
  has ethtool || need ethtool                       # tests/netdev.rs: veth against ethtool, ip
  has ip || need iproute2
  has systemd-analyze || need systemd               # deploy-test: systemd-analyze verify
  # The rxe VM test bed (vm-test) boots a kernel under QEMU; its run.sh and
  # ibsim's start.sh also install these themselves when root.
  has qemu-system-x86_64 || need qemu-system-x86
  has cpio || need cpio
  has depmod || need kmod
  has xz || need xz-utils
  # tests/web_config.rs: certificates from the openssl CLI, node_exporter as the
  # reference reader of the same web.yml (also make bench-compare's peer).
  has openssl || need openssl
  has tmux || need tmux                             # tests/top.rs: rdma-monitor top in a real terminal
  has prometheus-node-exporter || need prometheus-node-exporter
fi
if [ "$what" = ci ]; then
  [ -x /usr/bin/time ] || need time                 # make measure
fi
if [ "$what" = bench ]; then
  [ -e /usr/include/isa-l/igzip_lib.h ] || need libisal-dev
fi

if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make $what needs Debian packages that are missing; run: sudo apt-get install ${pkgs[*]}" >&2
    exit 1
  fi
  echo "== apt-get install ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

case "$what" in build | bindings) exit 0 ;; esac
# Rust pieces (rustup fetches them when missing): the musl target, lint tools.
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
[ "$what" = static ] && exit 0
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# The Kubernetes OpenAPI schemas for tests/deploy/k8s.py, in a venv of its
# own (Debian's python refuses pip installs into the system, PEP 668).
if ! has kubernetes-validate && [ ! -x target/pyenv/bin/kubernetes-validate ]; then
  echo "== pip install kubernetes-validate into target/pyenv"
  mkdir -p target
  python3 -m venv --system-site-packages target/pyenv
  target/pyenv/bin/pip install -q kubernetes-validate
fi
