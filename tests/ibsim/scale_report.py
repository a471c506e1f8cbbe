#!/usr/bin/env python3
"""The table of make ibsim-scale (tests/ibsim/scale.sh): per fat tree, the
agent's sweep and fabric-counter times and MADs from its --once snapshot and
the sweep's detail file, its CPU per MAD, the sizes of the main snapshot and
of the detail file, the load average around the runs, and ibnetdiscover -o 16 /
ibqueryerrors --counters --skip-sl wall times on the same fabric (best of 3)."""
import json
import os
import sys

OUT, SIZES = sys.argv[1], sys.argv[2:]
print(f"{'HCAs':>5} {'nodes':>6} {'ports':>6} {'sweep ms':>9} {'sweep MADs/port':>16} {'counters ms':>12} "
      f"{'counter MADs/port':>18} {'agent CPU µs/MAD':>17} {'agent wall ms':>14} {'ibnetdiscover ms':>17} "
      f"{'ibqueryerrors ms':>17} {'snapshot KiB':>13} {'detail KiB':>11} {'load':>10}")
failed = False


def load(d):
    """The 1-minute load average before and after this size's runs."""
    with open(os.path.join(d, "load")) as f:
        return "-".join(line.split()[0] for line in f if line.strip())


for n in SIZES:
    d = os.path.join(OUT, n)
    if os.path.exists(os.path.join(d, "errors.txt")):
        print(f"{n}: " + open(os.path.join(d, "errors.txt")).read().strip())
        failed = True
    best = {k: min(int(x) for x in open(os.path.join(d, f"{k}.ns")).read().split()) / 1e6
            for k in ("agent", "ibnetdiscover", "ibqueryerrors")}
    raw = open(os.path.join(d, "agent.out")).read()
    snap = json.loads(raw)
    mad = snap["mad"]
    summary = mad["fabric_summary"]
    if "fabric" in mad or "fabric_counters" in mad:
        print(f"{n}: the main snapshot holds the fabric detail inline")
        failed = True
    with open(summary["detail_file"], "rb") as f:
        detail_bytes = len(f.read())
    nodes, ports = summary["nodes"], summary["counter_ports"]
    sweep_mads = summary["sweep_mads"]
    total = mad["stats"]["sent"]
    counter_mads = total - sweep_mads
    cpu = min(sum(float(x) for x in line.split()) for line in open(os.path.join(d, "agent.cpu")) if line.strip())
    print(f"{n:>5} {nodes:>6} {ports:>6} {summary['sweep_seconds'] * 1000:9.1f} {sweep_mads / max(ports, 1):16.2f} "
          f"{(mad.get('fabric_counters_seconds') or 0) * 1000:12.1f} {counter_mads / max(ports, 1):18.2f} "
          f"{cpu * 1e6 / max(total, 1):17.1f} {best['agent']:14.1f} {best['ibnetdiscover']:17.1f} "
          f"{best['ibqueryerrors']:17.1f} {len(raw) / 1024:13.1f} {detail_bytes / 1024:11.1f} {load(d):>10}")
print("sweep/counters: the agent's own timing of each phase (its snapshot, the last of 3 runs); agent wall: the whole --once "
      "command (start-up, sweep, counters, snapshot); CPU: user+sys of that command (/usr/bin/time, 10 ms ticks) "
      "over every MAD it sent; the tools: whole command wall time through the same ibsim preload; snapshot: the main "
      "snapshot (pretty JSON, the fabric summary only); detail: the sweep's fabric-*.json file (compact JSON: every "
      "node, link and port counter); load: /proc/loadavg (1 min) before and after the size's runs.")
sys.exit(1 if failed else 0)
