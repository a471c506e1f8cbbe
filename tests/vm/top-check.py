#!/usr/bin/env python3
"""top's rates × its interval equal the `rdma statistic` deltas over the same
burst (tests/vm/top-guest.sh), for every counter of rxe0/1, within the
rounding of the printed rate and interval."""
import json, re, sys

d = sys.argv[1]
before = json.load(open(f"{d}/s_before.json"))[0]
after = json.load(open(f"{d}/s_after.json"))[0]
text = open(f"{d}/top.txt").read()
interval = float(re.search(r"rates over ([0-9.]+)s", text).group(1))
section = text.split("rxe0/1 ")[1].split("\nrxe1/1")[0]
rates = {m.group(1): (int(m.group(2)), float(m.group(3)))
         for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s+([0-9.]+)/s$", section, re.M)}
counters = [k for k in after if k not in ("ifname", "port")]
assert set(counters) <= set(rates), f"top lacks {set(counters) - set(rates)}"
moved = 0
for k in counters:
    delta = after[k] - before[k]
    value, rate = rates[k]
    assert value == after[k], f"{k}: top shows {value}, rdma statistic {after[k]}"
    # rate printed to 0.01/s, interval to 0.01 s
    slack = 0.005 * interval + rate * 0.005 + 0.5
    assert abs(rate * interval - delta) <= slack, f"{k}: {rate}/s × {interval} s ≠ delta {delta}"
    moved += delta > 0
assert after["sent_pkts"] - before["sent_pkts"] > 100, "the burst did not run"
print(f"top in the rxe VM: {len(counters)} counters of rxe0/1, {moved} moved; rate × {interval} s = "
      f"rdma statistic delta for each (sent_pkts {after['sent_pkts'] - before['sent_pkts']} = "
      f"{rates['sent_pkts'][1]}/s × {interval} s)")
