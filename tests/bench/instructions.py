#!/usr/bin/env python3
"""make bench-instructions: the instructions each build of the static agent
runs in user space per cycle (its collection thread) and per scrape (its HTTP
threads), counted by valgrind's callgrind on the 16-HCA fixture at a cycle a
second with a scrape a second. Instruction counts repeat from run to run
whatever else the machine does, where CPU time on a shared 2-core machine
moves by 10 % between windows: they tell whether a change to the hot path
took work away, not what it costs in time (make bench-cadence does). Kernel
time (the reads themselves, the TCP sends) is not counted.

For each agent: started under callgrind, left 5 s past its first answer,
then its counts zeroed (callgrind_control -d) and counted for BENCH_SECONDS, cycles
from its own rdma_monitor_cycles_total before and after.
Environment: AGENT (a,b to compare builds; default the static build),
BENCH_SECONDS (20), ENCODING (identity or gzip: what the scrapes ask for; identity),
KIND (static, or changing: a copy of the tree whose counters move every second
as make bench-cadence's changing trees do, so that rates and findings run),
KEEP (a directory: the callgrind dumps are copied there for callgrind_annotate,
one subdirectory per agent; build the agent with its symbols for names).
Needs valgrind (apt-get install valgrind)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cadence  # noqa: E402  (its trees, ports and defaults)

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
ENCODING = os.environ.get("ENCODING", "identity")
if ENCODING not in ("gzip", "identity"):
    sys.exit(f"ENCODING is gzip or identity, not {ENCODING}")
KIND = os.environ.get("KIND", "static")
if KIND not in ("static", "changing"):
    sys.exit(f"KIND is static or changing, not {KIND}")


def scrape(url):
    req = urllib.request.Request(url, headers={"Accept-Encoding": ENCODING})
    return urllib.request.urlopen(req, timeout=30).read()


def cycles(url):
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    m = re.search(r"^rdma_monitor_cycles_total (\d+)$", text, re.M)
    if not m:
        sys.exit("no rdma_monitor_cycles_total in the scrape")
    return int(m.group(1))


def dumps(work, part):
    """Instructions per thread in callgrind dump `part` (thread 1: main)."""
    out = {}
    for f in glob.glob(os.path.join(work, f"cg.out.{part}-*")):
        text = open(f).read()
        thread = re.search(r"^thread: (\d+)$", text, re.M)
        totals = re.search(r"^totals: (\d+)$", text, re.M)
        if thread and totals:
            out[int(thread.group(1))] = int(totals.group(1))
    return out


def measure(agent, work):
    port = cadence.free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    tree, changer = cadence.TREE16, None
    if KIND == "changing":
        tree = os.path.join(work, "tree")
        cadence.make_tree(1, tree)
        changer = cadence.Changer(tree)
    env = cadence.agent_env(tree, port, os.path.join(work, "snapshots"))
    out = os.path.join(work, "cg.out")
    vg = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes",
         f"--callgrind-out-file={out}", agent],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if changer:
            changer.phase = time.monotonic() + 0.5
            changer.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if vg.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"{agent} under callgrind never answered")
                time.sleep(0.2)
        time.sleep(5)
        before = cycles(url)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], check=True, capture_output=True)
        t0 = time.monotonic()
        scrapes = 0
        while time.monotonic() - t0 < SECONDS:
            scrape(url)
            scrapes += 1
            time.sleep(max(0.0, 1 - (time.monotonic() - t0) % 1))
        after = cycles(url)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], check=True, capture_output=True)
        scrapes += 1
    finally:
        vg.terminate()
        vg.wait()
        if changer and changer.is_alive():
            changer.stop.set()
            changer.join()
    counted = dumps(work, 2)
    if os.environ.get("KEEP"):
        keep = os.path.join(os.environ["KEEP"], os.path.basename(agent))
        os.makedirs(keep, exist_ok=True)
        for f in glob.glob(out + "*"):
            shutil.copy(f, keep)
    if 1 not in counted or after <= before:
        sys.exit(f"no counts for {agent}: threads {sorted(counted)}, cycles {before}..{after}")
    n = after - before
    others = sum(v for t, v in counted.items() if t != 1)
    return n, counted[1] / n, scrapes, others / scrapes


def main():
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("needs valgrind: apt-get install valgrind")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 16-HCA fixture ({KIND}), a cycle and a scrape "
          f"(Accept-Encoding: {ENCODING}) a second, {SECONDS:.0f} s under callgrind; user-space instructions")
    print(f"  {'agent':40} {'cycles':>6} {'collection thread / cycle':>26} {'other threads / scrape':>23}")
    for agent in cadence.AGENTS:
        with tempfile.TemporaryDirectory() as work:
            n, per_cycle, scrapes, per_scrape = measure(agent, work)
        print(f"  {agent[-40:]:40} {n:6d} {per_cycle:26,.0f} {per_scrape:23,.0f}")


if __name__ == "__main__":
    main()
