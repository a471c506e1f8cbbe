#!/usr/bin/env python3
"""make hot-order: writes link/hot.order, the functions a steady agent runs,
for lld's --symbol-ordering-file (build.rs), so they sit together at the
start of .text and the agent keeps few code pages mapped.

The profile: the static agent built with its symbols (same code, same
names as `make static`), run under valgrind's callgrind on the 16-HCA
fixture with a cycle a second and a scrape a second (with and without gzip)
for DURATION seconds after a 25 s start; every function with instructions
counted after the start is listed, in the order of the profiled binary.
A rescan (general.rescan_interval, 60 s) and snapshot writes (30 s) fall in
the window. The netlink path (real devices) is not in this profile: its
modules are listed after by name (see AFTER), so they sit next to the rest.
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
# Listed after the profiled functions, by name: the netlink path's modules,
# which the fixture (sysfs only) does not run; the release of unused pages
# (src/resident.rs), whose own code runs right after it unmaps; musl's
# memcpy/memmove/memset, which valgrind runs its own copies of.
AFTER = re.compile(r"_ZN12rdma_monitor(7sources(7netlink|7ethtool|6netdev|11attribution)|8resident)|(memcpy|memmove|memset)$")


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


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    syms = symbols(AGENT)
    if not syms:
        sys.exit(f"{AGENT} has no symbols: build it with "
                 "`cargo rustc --release --target x86_64-unknown-linux-musl --bin rdma-monitor -- -C strip=none`")
    work = tempfile.mkdtemp(prefix="rdma-monitor-hot-order-")
    port = 19000 + os.getpid() % 1000
    env = {"PATH": "/usr/bin:/bin", "RDMA_MON_GENERAL__SYSFS_ROOT": TREE,
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

    t = threading.Thread(target=scrape, daemon=True)
    t.start()
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
    after = sorted((n for n in syms if AFTER.match(n) and n not in steady), key=syms.get)
    with open(OUT, "w") as f:
        f.write(f"# Written by `make hot-order` (link/hot-order.py) {time.strftime('%Y-%m-%d', time.gmtime())}:\n"
                f"# {len(hot)} functions a steady agent ran (callgrind, 16-HCA fixture, a cycle and a\n"
                f"# scrape a second, {DURATION:.0f} s), then {len(after)} by name (the netlink path, the\n"
                f"# release of unused pages, memcpy/memmove/memset).\n")
        f.write("\n".join(hot + after) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"{OUT}: {len(hot)} profiled + {len(after)} named functions")


main()
