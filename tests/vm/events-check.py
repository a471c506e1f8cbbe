#!/usr/bin/env python3
"""Checks what tests/vm/events-guest.sh wrote in the rxe VM:
1. the double flap of rxe0's netdev between two polls: the link events of
   one cycle (one snapshot's events.link_changes) hold both down→up
   changes, less than 1 s apart, and the final snapshot has link_flapping on
   rxe0/1 with at least 2 transitions;
2. the stand-in line written to /dev/kmsg: a critical kernel_log_event on
   subject `pci 0000:5e:00.0` (no such device here) from the pattern
   mlx5_command_timeout, facility 1 (user space), the line as evidence;
3. the kernel's own lines (facility 0): rxe's "infiniband rxe0: set down"
   (rxe_port_down) of the flap is a kernel_log_event on rxe0, resolved from
   the record's DEVICE=+infiniband:rxe0. The lines of `rdma link delete/add`
   are printed: on 6.1 delete says nothing and add says "set active" and
   "added <netdev>" at info, which no pattern takes (not a fault);
4. /metrics: rdma_monitor_events_received_total{listener="link"} > 0; the
   RDMA monitor listener is `polling` on kernels before 6.12 (the events
   are from 6.12), `listening` after.
Usage: events-check.py SHARE [SNAPSHOT]  (SNAPSHOT: another final snapshot,
e.g. a perturbed copy, in place of SHARE/snapshot.json)."""
import glob, json, re, sys

d = sys.argv[1]
final = json.load(open(sys.argv[2] if len(sys.argv) > 2 else f"{d}/snapshot.json"))
netdev = open(f"{d}/netdev.txt").read().strip()
kernel = open(f"{d}/uname.txt").read().strip()
snaps = [json.load(open(p)) for p in sorted(glob.glob(f"{d}/snaps/*.json"))]
assert len(snaps) >= 4, f"{len(snaps)} snapshots, the guest waits for 4"
findings = final.get("findings", [])


def finding(id_, **where):
    return [f for f in findings if f["id"] == id_ and all(f.get(k) == v for k, v in where.items())]


# 1. the flap, from events
per_cycle = []
for s in snaps:
    ch = [c for c in (s.get("events") or {}).get("link_changes", []) if c["netdev"] == netdev]
    if ch:
        per_cycle.append(ch)
assert per_cycle, f"no snapshot has link changes of {netdev}: the flap was not seen from events"
assert len(per_cycle) == 1, f"the flap's changes are spread over {len(per_cycle)} cycles: {per_cycle}"
changes = per_cycle[0]
ups = [c["unix_ms"] for prev, c in zip(changes, changes[1:]) if not prev["carrier"] and c["carrier"]]
assert len(ups) >= 2, f"{netdev}: fewer than two down→up changes in one cycle: {changes}"
gap = ups[1] - ups[0]
assert gap < 1000, f"{netdev}: the two ups are {gap} ms apart, the guest made them within 1 s"
flap = finding("link_flapping", device="rxe0", port=1)
assert flap, f"no link_flapping on rxe0/1; findings: {[(f['id'], f.get('device')) for f in findings]}"
n = flap[0]["evidence"]["transitions"]
assert n >= 2, f"link_flapping on rxe0/1 with {n} transitions"
print(f"vm-events: {netdev}: {len(changes)} link events in one cycle, ups {gap} ms apart; "
      f"link_flapping rxe0/1: {flap[0]['summary']}")

# 2. the stand-in line
k = finding("kernel_log_event", subject="pci 0000:5e:00.0")
assert k, f"no kernel_log_event on pci 0000:5e:00.0; kernel_log_event findings: " \
    f"{[(f.get('device'), f.get('subject')) for f in findings if f['id'] == 'kernel_log_event']}"
ev = k[0]["evidence"]
assert "mlx5_command_timeout" in ev["patterns"], ev
assert k[0]["severity"] == "critical" and ev["facility"] == 1 and "Will cause a leak" in ev["line"], k[0]
print(f"vm-events: kernel_log_event {k[0]['subject']}: {k[0]['summary']}")

# 3. the kernel's own lines
dmesg = open(f"{d}/dmesg.txt").read().splitlines()
mark = next(i for i, l in enumerate(dmesg) if "events-guest: rdma link delete/add" in l)
after = [re.sub(r"^\[[ 0-9.]+\] ", "", l) for l in dmesg[mark + 1:]]
print(f"vm-events: the kernel's lines after rdma link delete/add rxe0: {after}")
kernel_lines = [f for f in finding("kernel_log_event", device="rxe0")
                if f["evidence"]["facility"] == 0 and "rxe_port_down" in f["evidence"]["patterns"]]
assert kernel_lines, "no kernel_log_event rxe_port_down on rxe0 from the kernel's own line"
print(f"vm-events: kernel_log_event rxe0 (kernel line): {kernel_lines[0]['summary']} "
      f"patterns {kernel_lines[0]['evidence']['patterns']}")

# 4. metrics and listener states
metrics = open(f"{d}/metrics.txt").read()
m = re.search(r'^rdma_monitor_events_received_total\{listener="link"\} (\S+)$', metrics, re.M)
assert m and float(m.group(1)) > 0, "rdma_monitor_events_received_total{listener=\"link\"} missing or 0"
ev_status = final["events"]
major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", kernel).groups())
want = "listening" if (major, minor) >= (6, 12) else "polling"
assert ev_status["rdma_monitor"]["state"] == want, \
    f"kernel {kernel}: rdma_monitor is {ev_status['rdma_monitor']} (want {want})"
assert ev_status["link_events"]["state"] == "listening" and ev_status["kernel_log"]["state"] == "listening", ev_status
print(f"vm-events: link events received {m.group(1)}; kernel {kernel}: rdma_monitor {want} "
      f"({ev_status['rdma_monitor'].get('detail', '')}); kernel log matched {ev_status['kernel_log_matched_total']}")
print("vm-events: OK")
