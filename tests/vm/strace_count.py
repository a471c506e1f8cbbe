#!/usr/bin/env python3
"""Syscalls per steady cycle from `strace -f` traces of the agent in the rxe
VM (tests/vm/strace.sh). A cycle ends where the main thread's wait for the
next one times out (recv_timeout: futex ... ETIMEDOUT); every syscall of every
thread between two such waits belongs to that cycle (the wait itself is left
out). The first two cycles (discovery) and the last (SIGTERM) are dropped;
the median cycle is printed with its syscalls by name, beside the agent's own
count of its last cycle (its snapshot's sources.last_cycle)."""
import collections
import glob
import json
import os
import re
import statistics
import sys

OUT = sys.argv[1]
LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")


def cycles(path):
    main, current, done = None, collections.Counter(), []
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        pid, resumed, name = m.group(1), m.group(2), m.group(3)
        main = main or pid
        if pid == main and (resumed or name) == "futex" and "ETIMEDOUT" in line and "unfinished" not in line:
            done.append(current)
            current = collections.Counter()
        elif name and not resumed:
            current[name] += 1
    return done


devices = open(os.path.join(OUT, "devices.txt")).read().split()
for mode, label in (("always", "netlink"), ("never", "sysfs only")):
    steady = cycles(os.path.join(OUT, f"trace-{mode}.txt"))[2:]
    if not steady:
        sys.exit(f"{label}: no steady cycles in the trace")
    totals = sorted(sum(c.values()) for c in steady)
    median = statistics.median_low(totals)
    pick = next(c for c in steady if sum(c.values()) == median)
    snaps = sorted(glob.glob(os.path.join(OUT, f"snap-{mode}", "*.json")))
    own = json.load(open(snaps[-1]))["sources"]["last_cycle"] if snaps else {}
    nports = sum(len(d["ports"]) for d in json.load(open(snaps[-1]))["devices"]) if snaps else 0
    print(f"{label}: {len(steady)} steady cycles, strace counts {min(totals)}..{max(totals)} syscalls a cycle "
          f"(median {median}) for {len(devices)} devices, {nports} ports")
    print("  median cycle by syscall: " + ", ".join(f"{n} {k}" for k, n in pick.most_common()))
    keep = ("rdma_netlink_syscalls", "sysfs_syscalls", "ethtool_ioctls", "rtnetlink_round_trips", "netdevs")
    print("  agent's own count, last cycle: " + ", ".join(f"{k} {own[k]}" for k in keep if k in own))
