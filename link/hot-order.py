#!/usr/bin/env python3
"""make hot-order: writes link/hot.order, the functions a steady agent runs,
for lld's --symbol-ordering-file (build.rs), so they sit together at the
start of .text and the agent keeps few code pages mapped.

The profile: the static agent built with its symbols (same code, same
names as `make static`), run under valgrind's callgrind on a copy of the
16-HCA fixture whose port counters grow every second (as a busy node's: the
deltas, rates and findings of moving counters run), with a cycle a second
and a scrape a second (with and without gzip) for DURATION seconds after a
25 s start; every function with instructions counted after the start is
listed, in the order of the profiled binary.
A rescan (general.rescan_interval, 60 s) and snapshot writes (30 s) fall in
the window. The netlink path (real devices) is not in this profile: its
modules are listed after by name (see AFTER), so they sit next to the rest.
Run it again after changing code on the hot path: a function renamed or
added is missing from the old list (lld skips names it does not find, and
local symbols carry a number that moves with other changes), and the layout
it gave is gone without a warning.
Environment: AGENT (the binary with symbols), DURATION (75).
Needs valgrind (apt-get install valgrind) and nm."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
AGENT = os.environ.get("AGENT", os.path.join(TARGET, "x86_64-unknown-linux-musl/release/rdma-monitor"))
TREE = os.path.join(REPO, "fixtures/sysfs/node-16hca")
DURATION = float(os.environ.get("DURATION", "75"))
OUT = os.path.join(REPO, "link/hot.order")
# Listed after the profiled functions, by name, in this order: the release
# of unused pages (src/resident.rs), whose own code runs right after it
# unmaps; what a thread runs at its first use of thread-locals, channels and
# arc-swap (each HTTP worker at its first requests, found by tracing page
# faults: the profile's copies of these generics are others); musl's
# memcpy/memmove/memset, which valgrind runs its own copies of (lld leaves
# them in place: assembly in a plain .text), and madvise (the release); the
# netlink path's modules, which the fixture (sysfs only) does not run.
AFTER = [re.compile(p) for p in (
    r"_ZN12rdma_monitor8resident",
    r".*(thread_local.*(get_or_init_slow|destructors)|4mpmc7context|8arc_swap4debt)",
    r"(memcpy|memmove|memset|__madvise)$",
    r"_ZN12rdma_monitor7sources(7netlink|7ethtool|6netdev|11attribution)",
)]


def functions(path):
    """Names of the functions with an own cost in one callgrind dump."""
    names, own = {}, set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                kind, i, name = m.groups()
                if name:
                    names[i] = name
                if kind == "fn":
                    own.add(i)
    return {re.sub(r"'\d+$", "", names[i]) for i in own if i in names}


def symbols(binary):
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwW":
            syms.setdefault(p[3], int(p[0], 16))
    return syms


def grow_counters(tree, stop):
    """Every second, adds to every port counter of the tree (in place, as
    the kernel's files change: the value only grows, so no truncation)."""
    files = [os.path.join(d, f) for d, _, names in os.walk(tree)
             if os.path.basename(d) in ("counters", "hw_counters") for f in names if f != "lifespan"]
    values = {}
    for f in files:
        with open(f) as fh:
            values[f] = int(fh.read().split()[0])
    step = 0
    while not stop.wait(1.0):
        step += 1
        for i, f in enumerate(files):
            values[f] += 1 + (i * 7919 + step * 104729) % 100_000
            fd = os.open(f, os.O_WRONLY)
            try:
                os.pwrite(fd, f"{values[f]}\n".encode(), 0)
            finally:
                os.close(fd)


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    syms = symbols(AGENT)
    if not syms:
        sys.exit(f"{AGENT} has no symbols: build it with "
                 "`cargo rustc --release --target x86_64-unknown-linux-musl --bin rdma-monitor -- -C strip=none`")
    work = tempfile.mkdtemp(prefix="rdma-monitor-hot-order-")
    tree = os.path.join(work, "tree")
    shutil.copytree(TREE, tree, symlinks=True)
    port = 19000 + os.getpid() % 1000
    env = {"PATH": "/usr/bin:/bin", "RDMA_MON_GENERAL__SYSFS_ROOT": tree,
           "RDMA_MON_GENERAL__POLL_INTERVAL": "1", "RDMA_MON_PROMETHEUS__LISTEN_ADDRESS": "127.0.0.1",
           "RDMA_MON_PROMETHEUS__PORT": str(port),
           "RDMA_MON_GENERAL__SNAPSHOT_DIR": os.path.join(work, "snapshots"),
           "RDMA_MON_GENERAL__LOG_LEVEL": "error"}
    vg = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no",
                           f"--callgrind-out-file={work}/cg.out", AGENT], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def scrape():
        i = 0
        while not stop.wait(1.0):
            headers = {"Accept-Encoding": "gzip"} if i % 2 == 0 else {}
            try:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers),
                                       timeout=5).read()
            except OSError:
                pass  # still starting under valgrind
            i += 1

    for work_fn in (scrape, lambda: grow_counters(tree, stop)):
        threading.Thread(target=work_fn, daemon=True).start()
    try:
        time.sleep(25)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], check=True, capture_output=True)
        time.sleep(DURATION)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], check=True, capture_output=True)
        time.sleep(1)
    finally:
        stop.set()
        vg.terminate()
        vg.wait(timeout=30)
    dumps = sorted(f for f in os.listdir(work) if re.fullmatch(r"cg\.out\.\d+", f))
    if len(dumps) < 2:
        sys.exit(f"callgrind wrote {dumps}: no steady dump")
    steady = functions(os.path.join(work, dumps[-1]))
    if not any("SysfsSource6rescan" in n for n in steady):
        print("note: no rescan in the profiled window", file=sys.stderr)
    hot = sorted((n for n in steady if n in syms and n != "dummy"), key=syms.get)
    after = []
    for pattern in AFTER:
        after += sorted((n for n in syms if pattern.match(n) and n not in steady and n not in after), key=syms.get)
    with open(OUT, "w") as f:
        f.write(f"# Written by `make hot-order` (link/hot-order.py) {time.strftime('%Y-%m-%d', time.gmtime())}:\n"
                f"# {len(hot)} functions a steady agent ran (callgrind, 16-HCA fixture with growing counters, a cycle and a\n"
                f"# scrape a second, {DURATION:.0f} s), then {len(after)} by name (the release of unused\n"
                f"# pages, a thread's first use of thread-locals, memcpy/memmove/memset/madvise, the netlink path).\n")
        f.write("\n".join(hot + after) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"{OUT}: {len(hot)} profiled + {len(after)} named functions")


main()
