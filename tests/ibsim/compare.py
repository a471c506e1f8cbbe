#!/usr/bin/env python3
"""Checks what tests/ibsim/run.sh recorded: the agent against perfquery and
ibnetdiscover on the same simulated fabric. Exit status 1 on any mismatch."""
import json
import os
import sys

OUT = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def text(name):
    with open(os.path.join(OUT, name)) as f:
        return f.read()


def load(name):
    return json.loads(text(name))


def detail(doc):
    """The fabric detail file the snapshot's summary names (the sweep and
    every port's counters); the snapshot itself holds only the summary."""
    mad = doc["mad"]
    check("fabric" not in mad and "fabric_counters" not in mad,
          f"the snapshot holds the fabric detail inline: {sorted(mad)}")
    with open(mad["fabric_summary"]["detail_file"]) as f:
        d = json.load(f)
    s = mad["fabric_summary"]
    check((s["nodes"], s["links"], s["counter_ports"]) == (len(d["fabric"]["nodes"]), len(d["fabric"]["links"]),
                                                           len(d["fabric_counters"])),
          f"summary {s} does not count its detail file")
    return d


def rc(name):
    return int(text(name + ".rc").strip())


def topology_lines(t):
    return [l for l in t.splitlines() if "generated on" not in l]


# The PMA field names perfquery prints, and the names the agent gives them
# (the sysfs file names). Written here from the IBTA field list.
PC = {
    "SymbolErrorCounter": "symbol_error", "LinkErrorRecoveryCounter": "link_error_recovery",
    "LinkDownedCounter": "link_downed", "PortRcvErrors": "port_rcv_errors",
    "PortRcvRemotePhysicalErrors": "port_rcv_remote_physical_errors",
    "PortRcvSwitchRelayErrors": "port_rcv_switch_relay_errors", "PortXmitDiscards": "port_xmit_discards",
    "PortXmitConstraintErrors": "port_xmit_constraint_errors",
    "PortRcvConstraintErrors": "port_rcv_constraint_errors",
    "LocalLinkIntegrityErrors": "local_link_integrity_errors",
    "ExcessiveBufferOverrunErrors": "excessive_buffer_overrun_errors", "VL15Dropped": "VL15_dropped",
    "PortXmitWait": "port_xmit_wait",
}
EXT = {
    "PortXmitData": "port_xmit_data", "PortRcvData": "port_rcv_data", "PortXmitPkts": "port_xmit_packets",
    "PortRcvPkts": "port_rcv_packets", "PortUnicastXmitPkts": "unicast_xmit_packets",
    "PortUnicastRcvPkts": "unicast_rcv_packets", "PortMulticastXmitPkts": "multicast_xmit_packets",
    "PortMulticastRcvPkts": "multicast_rcv_packets",
}
TRAFFIC = {"PortXmitData", "PortRcvData", "PortXmitPkts", "PortRcvPkts"}


def golden(name):
    g = {}
    with open(os.path.join(OUT, name, "counters.tsv")) as f:
        next(f)
        for line in f:
            lid, port, attr, field, value = line.rstrip("\n").split("\t")
            g[(int(lid), int(port), attr, field)] = int(value)
    return g


print("ibsim: the agent against ibnetdiscover and perfquery")

# Topology, byte for byte but the date line.
want = topology_lines(text("golden-before/ibnetdiscover.txt"))
got = topology_lines(text("topology.txt"))
check(rc("topology.txt") == 0, "topology exit status")
check(rc("topology-cut.txt") == 4,
      f"topology with a 1 µs sweep budget: exit {rc('topology-cut.txt')}, want 4 (incomplete)")
check("incomplete" in text("topology-cut.txt.err") or "budget" in text("topology-cut.txt.err"),
      "topology cut short says why on stderr: " + text("topology-cut.txt.err")[-300:])
print(f"  topology cut short by a 1 µs sweep budget: exit {rc('topology-cut.txt')}")
check(got == want, "topology differs from ibnetdiscover:\n" + "\n".join(
    f"  - {a!r}\n  + {b!r}" for a, b in zip(want, got) if a != b))
nodes = sum(1 for l in want if l.startswith(("Switch", "Ca")))
links = sum(1 for l in want if l.startswith("["))
print(f"  topology: {nodes} nodes, {links} port lines, identical to ibnetdiscover")

# Counters of every port.
before, after = golden("golden-before"), golden("golden-after")
snap = load("once.json")
check(rc("once.json") == 0, "--once exit status")
ports = detail(snap)["fabric_counters"]
targets = sorted({(k[0], k[1]) for k in before if k[1] != 255})
seen = {(p["lid"], p["port"]): p for p in ports}
check(sorted(seen) == targets, f"ports read {sorted(seen)} != perfquery targets {targets}")
n = 0
for (lid, port), p in seen.items():
    if not check("pma" in p, f"lid {lid} port {port}: {p.get('error')}"):
        continue
    c = p["pma"]["counters"]
    for attr, table in (("PortCounters", PC), ("PortCountersExtended", EXT)):
        for field, name in table.items():
            key = (lid, port, attr, field)
            if key not in before:
                continue
            lo, hi = before[key], after[key]
            v = c.get(name)
            if field in TRAFFIC:
                ok = v is not None and lo <= v <= hi
            else:
                ok = v == lo == hi
            check(ok, f"lid {lid} port {port} {attr}.{field}: agent {v}, perfquery {lo}..{hi}")
            n += 1
print(f"  counters: {len(seen)} ports, {n} fields equal to perfquery (traffic ones between the before/after reads)")
node03 = seen.get((5, 1), {}).get("pma", {}).get("counters", {})
check(node03.get("symbol_error") == 4660 and node03.get("VL15_dropped") == 3855,
      f"node03 distinct values (counters.cmds): {node03}")

# A saturated counter is flagged.
sat = {(p["lid"], p["port"]): p for p in detail(load("saturated.json"))["fabric_counters"]}
node02 = sat.get((4, 1), {})
pma = node02.get("pma", {})
check(pma.get("counters", {}).get("symbol_error") == 65535 and "symbol_error" in pma.get("saturated", []),
      f"saturated SymbolErrorCounter not flagged: {node02}")
print("  saturation: node02 SymbolErrorCounter 65535 flagged")

# 30 % of PortCounters MADs to node04 dropped: retried, nothing hangs.
d = load("drop30.json")
check(rc("drop30.json") == 0, "drop30 exit status")
stats = d["mad"]["stats"]
n04 = {(p["lid"], p["port"]): p for p in detail(d)["fabric_counters"]}.get((6, 1), {})
check("pma" in n04 or "no answer" in n04.get("error", ""), f"node04 under 30 % drops: {n04}")
check(stats["retries"] + stats["timeouts"] > 0, f"30 % drops caused no retry: {stats}")
print(f"  30 % drops at node04: {stats['retries']} retries, {stats['timeouts']} timeouts; node04 "
      + ("read" if "pma" in n04 else "reported unreachable"))

# A cable pulled and put back.
check(topology_lines(text("unlinked-topology.txt")) == topology_lines(text("unlinked-ibnetdiscover.txt")),
      "topology with node03 unlinked differs from ibnetdiscover's")
check("node03" not in text("unlinked-topology.txt"), "node03 still there after Unlink")
check(topology_lines(text("relinked-topology.txt")) == want, "topology after ReLink differs from the original")
print("  unlink/relink node03: topology follows ibnetdiscover both times")

# Nothing answers: errors, quickly, exit 0.
s = load("silent.json")
ms = int(text("silent.ms").strip())
check(rc("silent.json") == 0, "silent run exit status")
local = s["mad"]["local"]
check(local and "no answer" in local[0].get("error", ""), f"silent fabric: local port {local}")
check(ms < 20000, f"silent fabric took {ms} ms")
print(f"  silent fabric: local port reported '{local[0].get('error') if local else None}' after {ms} ms, exit 0")

# The scrape of a running agent: fabric families present, promtool clean.
import subprocess
metrics = text("metrics.txt") if os.path.exists(os.path.join(OUT, "metrics.txt")) else ""
check('rdma_fabric_port_symbol_errors_total{node_guid="0x0c42a10300e1a030",node_desc="node03 HCA-1",lid="5",port="1"} 4660' in metrics,
      "scrape lacks node03's SymbolErrorCounter")
check('rdma_fabric_nodes{type="switch"} 2' in metrics, "scrape lacks the node counts")
check('rdma_port_peer_info{umad="/dev/infiniband/umad0",port="1",peer_guid="0x248a0703009c0a10",peer_port="1"' in metrics,
      "scrape lacks the far end of the local link")
try:
    r = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(), f"promtool: {r.stdout}{r.stderr}")
    print("  scrape of a running agent in fabric mode: promtool check metrics clean")
except FileNotFoundError:
    check(not os.environ.get("CI"), "promtool missing in CI")
    print("  promtool not installed: scrape not linted")

# MADs per cycle for the local port plus its far end, steady state.
def sample(name, metric):
    total = 0
    for line in text(name).splitlines():
        if line.startswith(metric) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


try:
    mads = sample("local-metrics-2.txt", "rdma_monitor_mads_total") - sample("local-metrics-1.txt", "rdma_monitor_mads_total")
    cycles = sample("local-metrics-2.txt", "rdma_monitor_cycles_total") - sample("local-metrics-1.txt", "rdma_monitor_cycles_total")
    check(cycles > 0 and mads > 0, f"local MAD run: {mads} MADs in {cycles} cycles")
    per_cycle = mads / cycles if cycles else float("nan")
    print(f"  local port + far end: {per_cycle:.1f} MADs per cycle, steady ({mads:.0f} MADs over {cycles:.0f} cycles); "
          f"sysfs counters/ would cost 21 MADs for the local port alone")
except FileNotFoundError:
    check(False, "local MAD run: no scrape")

# Cost.
fab = detail(snap)["fabric"]
try:
    served = load("fabric.json")
    check((len(served["fabric"]["nodes"]), len(served["fabric_counters"])) == (len(fab["nodes"]), len(ports)),
          "/fabric of the running agent differs from the --once detail file in nodes or ports")
except FileNotFoundError:
    check(False, "/fabric: no answer from the running agent")
t_ibnd = [int(x) / 1e6 for x in text("ibnetdiscover.ns").split()]
t_agent = [int(x) / 1e6 for x in text("agent.ns").split()]
print(f"  sweep: {fab['mads']['sent']} MADs, {fab['duration_seconds'] * 1000:.1f} ms inside the agent; "
      f"whole command: agent topology {min(t_agent):.1f} ms, ibnetdiscover {min(t_ibnd):.1f} ms (best of 5)")
print(f"  fabric counters: {len(ports)} ports in {snap['mad']['fabric_counters_seconds'] * 1000:.1f} ms; "
      f"MADs this run: {snap['mad']['stats']['sent']}")

if failures:
    print(f"FAILED: {len(failures)}")
    for f in failures[:40]:
        print("  -", f)
    sys.exit(1)
print("ibsim check: all equal")
