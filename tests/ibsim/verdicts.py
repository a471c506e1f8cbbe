#!/usr/bin/env python3
"""Checks the fabric verdicts tests/ibsim/verdicts.sh recorded under ibsim.
Exit status 1 on any failure; prints each step's fabric findings."""
import json
import os
import re
import sys

V = os.path.join(sys.argv[1], "verdicts")
failures = []

LEAF1 = "MF0;leaf1:MSB7800/U1 (0x248a0703009c0a10)"
LEAF2 = "MF0;leaf2:MSB7800/U1 (0x248a0703009c0b20)"
NODE03 = "node03 HCA-1 (0x0c42a10300e1a030)"
ISL7 = f"{LEAF1} port 7 <-> {LEAF2} port 7"
ISL8 = f"{LEAF1} port 8 <-> {LEAF2} port 8"
HCA3 = f"{NODE03} port 1 <-> {LEAF2} port 1"


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def scrape(name):
    """The fabric findings of a step: (id, subject) pairs, sorted."""
    path = os.path.join(V, name + ".prom")
    waited = open(os.path.join(V, name + ".waited")).read().strip()
    check(waited == "ok", f"{name}: {waited}")
    if not os.path.exists(path):
        check(False, f"{name}: no scrape")
        return []
    out = []
    for line in open(path):
        if line.startswith("rdma_finding{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line))
            if labels["id"].startswith("fabric_"):
                out.append((labels["id"], labels["subject"].replace('\\"', '"'), labels["device"]))
    print(f"  {name}: " + ("; ".join(f"{i} [{s}]" for i, s, _ in sorted(out)) or "no fabric findings"))
    return sorted(out)


def once(name):
    with open(os.path.join(V, name + ".json")) as f:
        doc = json.load(f)
    got = sorted((x["id"], x.get("subject", "")) for x in doc["findings"] if x["id"].startswith("fabric_"))
    print(f"  {name} (--once, expected_topology): " + ("; ".join(f"{i} [{s}]" for i, s in got) or "no fabric findings"))
    return doc, got


# A. Between sweeps of a running agent.
check(scrape("a0-baseline") == [], "fabric findings before anything was pulled")
a1 = scrape("a1-unlinked")
check(("fabric_link_lost", ISL7, "") in a1, f"inter-switch link not lost with both ends named: {a1}")
check(("fabric_link_lost", HCA3, "") in a1, f"HCA link not lost with both ends named: {a1}")
check(("fabric_node_lost", NODE03, "") in a1, f"node03 not lost: {a1}")
check([x for x in a1 if x[0] == "fabric_link_lost"] == sorted([("fabric_link_lost", HCA3, ""), ("fabric_link_lost", ISL7, "")]),
      f"more links lost than pulled: {a1}")
a2 = scrape("a2-relinked")
check(not [x for x in a2 if x[0] in ("fabric_link_lost", "fabric_node_lost")], f"ReLink did not clear: {a2}")
a3 = scrape("a3-narrowed")
check(("fabric_link_degraded", ISL7, "") in a3, f"1x link not degraded: {a3}")
a4 = scrape("a4-widened")
check(not [x for x in a4 if x[0] == "fabric_link_degraded"], f"4x again, still degraded: {a4}")
a5 = scrape("a5-symbol-errors")
check(("fabric_port_errors", f"{LEAF2} port 3", "") in a5, f"symbol errors on leaf2[3] not a hot spot: {a5}")
a6 = scrape("a6-unreadable")
check(("fabric_port_unreadable", "node04 HCA-1 (0x0c42a10300e1a040) port 1", "") in a6,
      f"node04's dropped PortCounters not a finding: {a6}")
check(not [x for x in scrape("a7-readable") if x[0] == "fabric_port_unreadable"], "unreadable did not clear")
a8 = scrape("a8-dead-route")
route = open(os.path.join(V, "route-2-3.txt")).read().split("sim>")[0]
print("  leaf2 (LID 2) back to node01 (LID 3) with leaf1[7] pulled, OpenSM not re-run: " + " ".join(route.split()))
check(("fabric_link_lost", ISL7, "") in a8, f"ISL pulled, not lost: {a8}")
check([x for x in a8 if x[0] == "fabric_port_unreadable"], f"LID routes through the dead ISL, no unreadable port: {a8}")
a9 = scrape("a9-routed")
check(not [x for x in a9 if x[0] in ("fabric_port_unreadable", "fabric_link_lost")], f"left after ReLink and OpenSM: {a9}")

# B. Against the expected topology.
_, b0 = once("b0-same")
check(b0 == [], f"the fabric against its own topology: {b0}")
doc, b1 = once("b1-one-more")
check([x for x in b1 if x[0] == "fabric_link_lost"] == [("fabric_link_lost", ISL8)],
      f"expected topology with one link more: {b1}")
lost = [x for x in doc["findings"] if x["id"] == "fabric_link_lost"]
if lost:
    ends = lost[0]["evidence"]["ends"]
    check([(e["node_guid"], e["port"]) for e in ends] == [("0x248a0703009c0a10", 8), ("0x248a0703009c0b20", 8)],
          f"ends of the lost link: {ends}")
_, b2 = once("b2-broken")
check([x[0] for x in b2] == ["fabric_expected_topology_invalid"], f"broken expected topology: {b2}")
doc, b3 = once("b3-narrowed")
deg = [x for x in doc["findings"] if x["id"] == "fabric_link_degraded"]
check(len(deg) == 1 and deg[0]["subject"] == ISL7 and deg[0]["evidence"]["expected"] == "4xEDR"
      and deg[0]["evidence"]["active"] == "1xEDR", f"narrowed link against the file: {deg}")

if failures:
    print(f"FAILED (fabric verdicts): {len(failures)}")
    for f in failures:
        print("  -", f)
    sys.exit(1)
print("ibsim fabric verdicts: all as expected")
