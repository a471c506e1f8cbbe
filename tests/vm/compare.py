#!/usr/bin/env python3
"""Host-side check of what tests/vm/guest-check.sh wrote in the rxe VM.

Every hw counter and state the agent reported must equal what `rdma -j
statistic/link/res/dev` and sysfs showed at the same quiescent moment;
traffic must move the agent's counters by the kernel's amounts; the agent
must survive rxe1 being deleted and see it come back. Prints the syscall
cost per port and cycle, netlink against sysfs. Exit status 1 on any
mismatch.
"""
import json
import re
import os
import subprocess
import sys

OUT = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def load(name):
    with open(os.path.join(OUT, name)) as f:
        return json.load(f)


def ports(agent):
    """(device, port) -> port view of an agent snapshot."""
    return {(d["name"], p["port"]): p for d in agent["devices"] for p in d["ports"]}


def devices(agent):
    return {d["name"]: d for d in agent["devices"]}


# iproute2 rdma/link.c names.
STATE = {"NOP": 0, "DOWN": 1, "INIT": 2, "ARMED": 3, "ACTIVE": 4, "ACTIVE_DEFER": 5}
PHYS = {"SLEEP": 1, "POLLING": 2, "DISABLED": 3, "PORT_CONFIGURATION_TRAINING": 4,
        "LINK_UP": 5, "LINK_ERROR_RECOVERY": 6, "PHY_TEST": 7}


def compare_phase(prefix, agent_file, expect_origin="rdma_netlink"):
    agent = load(agent_file)
    ap = ports(agent)
    ad = devices(agent)
    stat = load(f"{prefix}-stat.json")
    check(len(stat) == len(ap), f"{agent_file}: {len(ap)} ports, rdma statistic shows {len(stat)}")
    n = 0
    for entry in stat:
        key = (entry["ifname"], entry["port"])
        if not check(key in ap, f"{agent_file}: no port {key}"):
            continue
        hw = ap[key]["hw_counters"]
        kernel = {k: v for k, v in entry.items() if k not in ("ifname", "port", "ifindex")}
        check(set(hw) == set(kernel),
              f"{agent_file} {key}: counter names differ: agent-only {set(hw) - set(kernel)}, kernel-only {set(kernel) - set(hw)}")
        for name, value in kernel.items():
            if check(name in hw, f"{agent_file} {key}: {name} missing"):
                check(hw[name]["value"] == value, f"{agent_file} {key} {name}: agent {hw[name]['value']} != rdma {value}")
                n += 1
        check(ap[key]["origin"]["hw_counters"] == expect_origin,
              f"{agent_file} {key}: hw counters from {ap[key]['origin']['hw_counters']}, expected {expect_origin}")
        check(ap[key]["origin"]["state"] == expect_origin,
              f"{agent_file} {key}: state from {ap[key]['origin']['state']}, expected {expect_origin}")
        # rxe has no PMA counters/: reported unsupported, never zeros.
        check(ap[key]["counters"] == {}, f"{agent_file} {key}: counters/ values invented")
        check(f"{key[0]}/ports/{key[1]}/counters" in ap[key]["unsupported"],
              f"{agent_file} {key}: missing counters/ not reported as unsupported")
    for link in load(f"{prefix}-link.json"):
        key = (link["ifname"], link["port"])
        if not check(key in ap, f"{agent_file}: no port {key} (rdma link)"):
            continue
        p = ap[key]
        check(p["state"]["value"] == STATE[link["state"]], f"{agent_file} {key}: state {p['state']} vs rdma {link['state']}")
        check(p["phys_state"]["value"] == PHYS[link["physical_state"]],
              f"{agent_file} {key}: phys_state {p['phys_state']} vs rdma {link['physical_state']}")
        check(p.get("netdev") == link.get("netdev"), f"{agent_file} {key}: netdev {p.get('netdev')} vs rdma {link.get('netdev')}")
        n += 3
    if expect_origin == "rdma_netlink":
        for res in load(f"{prefix}-res.json"):
            d = ad.get(res["ifname"])
            if not check(d is not None, f"{agent_file}: no device {res['ifname']} (rdma res)"):
                continue
            for kind, count in res.items():
                if kind in ("ifname", "ifindex"):
                    continue
                check(d["resources"].get(kind) == count,
                      f"{agent_file} {res['ifname']} resource {kind}: agent {d['resources'].get(kind)} != rdma {count}")
                n += 1
    for dev in load(f"{prefix}-dev.json"):
        d = ad.get(dev["ifname"])
        if check(d is not None, f"{agent_file}: no device {dev['ifname']} (rdma dev)"):
            check(d["node_guid"] == int(dev["node_guid"].replace(":", ""), 16),
                  f"{agent_file} {dev['ifname']}: node_guid {d['node_guid']:#x} vs rdma {dev['node_guid']}")
            n += 1
    # sysfs in the same guest.
    with open(os.path.join(OUT, f"{prefix}-sysfs.txt")) as f:
        for line in f:
            path, value = line.rstrip("\n").split("\t", 1)
            parts = path.split("/")  # /sys/class/infiniband/DEV/ports/N/...
            key = (parts[4], int(parts[6]))
            p = ap.get(key)
            if not check(p is not None, f"{agent_file}: no port {key} (sysfs)"):
                continue
            if parts[7] == "hw_counters":
                if parts[8] == "lifespan":
                    check(p.get("hw_counters_lifespan_ms") == int(value), f"{agent_file} {key}: lifespan")
                else:
                    check(p["hw_counters"].get(parts[8], {}).get("value") == int(value),
                          f"{agent_file} {key} {parts[8]}: agent {p['hw_counters'].get(parts[8])} != sysfs {value}")
            elif parts[7] == "state":
                check(p["state"]["value"] == int(value.split(":")[0]), f"{agent_file} {key}: state vs sysfs {value}")
            elif parts[7] == "phys_state":
                check(p["phys_state"]["value"] == int(value.split(":")[0]), f"{agent_file} {key}: phys_state vs sysfs {value}")
            elif parts[7] == "rate":
                check(value.startswith(f"{p['rate']['gbit_per_sec']:g} Gb/sec"), f"{agent_file} {key}: rate {p['rate']} vs sysfs {value}")
            elif parts[7] == "link_layer":
                check(p["link_layer"] == value, f"{agent_file} {key}: link_layer")
            n += 1
    # The RoCE ports' netdevs, read by rtnetlink, against `ip -s -j link`.
    ip = {l["ifname"]: l for l in load(f"{prefix}-ip-link.json")}
    nds = {d["name"]: d for d in agent.get("netdevs", [])}
    for key, p in ap.items():
        nd = nds.get(p.get("netdev"))
        if not check(nd is not None, f"{agent_file} {key}: netdev {p.get('netdev')} not read"):
            continue
        st = dict(nd["link"]["stats64"])
        ref = ip[nd["name"]]["stats64"]
        for ours, theirs in (("rx_bytes", ("rx", "bytes")), ("tx_bytes", ("tx", "bytes")),
                             ("rx_packets", ("rx", "packets")), ("tx_packets", ("tx", "packets"))):
            v, r = st[ours], ref[theirs[0]][theirs[1]]
            # ip read a moment before or after: equal but for a few background packets (IPv6 ND).
            check(abs(v - r) <= (4000 if "bytes" in ours else 40), f"{agent_file} {nd['name']} {ours}: agent {v}, ip {r}")
            n += 1
        check(nd["link"]["mtu"] == ip[nd["name"]]["mtu"], f"{agent_file} {nd['name']}: mtu")
    print(f"  {agent_file}: {n} values equal to rdma/sysfs/ip")
    return agent


print("rxe VM: agent against rdma statistic/link/res/dev and sysfs")
a = compare_phase("a", "a-agent.json")
compare_phase("a", "a-agent-sysfs.json", expect_origin="sysfs")
compare_phase("a", "a-agent-after.json")
b = compare_phase("b", "b-agent.json")

# Traffic moved the counters, and by the kernel's amounts.
a_stat = {(e["ifname"], e["port"]): e for e in load("a-stat.json")}
b_stat = {(e["ifname"], e["port"]): e for e in load("b-stat.json")}
ap, bp = ports(a), ports(b)
for key, after in b_stat.items():
    before = a_stat[key]
    for name in ("sent_pkts", "rcvd_pkts"):
        kernel_delta = after[name] - before[name]
        agent_delta = bp[key]["hw_counters"][name]["value"] - ap[key]["hw_counters"][name]["value"]
        check(kernel_delta > 0, f"traffic did not move {key} {name}")
        check(agent_delta == kernel_delta, f"{key} {name}: agent moved {agent_delta}, kernel {kernel_delta}")
    for name in after:
        if name in ("ifname", "port", "ifindex"):
            continue
        agent_delta = bp[key]["hw_counters"][name]["value"] - ap[key]["hw_counters"][name]["value"]
        check(agent_delta == after[name] - before[name], f"{key} {name}: delta differs")
print(f"  traffic: rxe0 sent_pkts +{b_stat[('rxe0', 1)]['sent_pkts'] - a_stat[('rxe0', 1)]['sent_pkts']} "
      f"(agent and kernel agree on every counter's delta)")

# A sysfs-only agent that ran through the traffic with its files held open:
# its last cycle equals the kernel after the traffic.
held = sorted(f for f in os.listdir(os.path.join(OUT, "held")) if f.endswith(".json"))
if check(held, "the held-fd agent wrote no snapshot"):
    with open(os.path.join(OUT, "held", held[-1])) as f:
        h = ports(json.load(f))
    n = 0
    for key, after in b_stat.items():
        for name, value in after.items():
            if name in ("ifname", "port", "ifindex"):
                continue
            check(h[key]["hw_counters"][name]["value"] == value, f"held fds {key} {name}: {h[key]['hw_counters'][name]['value']} != {value}")
            n += 1
        check(h[key]["origin"]["hw_counters"] == "sysfs", "held-fd agent did not read sysfs")
    print(f"  sysfs files held open and re-read with pread across the traffic: {n} values equal to the kernel's after it")

# Removal and return of rxe1 under a running agent.
snaps = sorted(f for f in os.listdir(os.path.join(OUT, "snaps")) if f.endswith(".json"))
seen = []
for f in snaps:
    with open(os.path.join(OUT, "snaps", f)) as fh:
        s = json.load(fh)
    seen.append("rxe1" in {d["name"] for d in s["devices"]})
transitions = [seen[0]] + [y for x, y in zip(seen, seen[1:]) if x != y]
check(transitions == [True, False, True], f"rxe1 presence over {len(seen)} snapshots: {seen}")
with open(os.path.join(OUT, "c-steps.log")) as f:
    steps = f.read()
check("alive after delete" in steps, "agent died when rxe1 was deleted")
check("agent exit 0" in steps, f"agent did not exit 0 on SIGTERM: {steps!r}")
print(f"  rxe1 deleted and re-added: {len(seen)} snapshots, presence {transitions}; agent alive, exit 0")
metrics = os.path.join(OUT, "c-metrics.txt")
if os.path.exists(metrics):
    text = open(metrics).read()
    check('rdma_port_hw_stat_total{device="rxe0",port="1",counter="sent_pkts"}' in text, "scrape lacks rxe0 sent_pkts")
    try:
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        check(r.returncode == 0 and not (r.stdout + r.stderr).strip(), f"promtool on the guest scrape: {r.stdout}{r.stderr}")
        print("  guest scrape: promtool check metrics clean")
    except FileNotFoundError:
        print("  guest scrape: promtool not installed, not checked")


# Cost of a steady cycle, from the snapshots' own accounting.
def steady(mode):
    d = os.path.join(OUT, f"cost-{mode}")
    files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    costs = []
    for f in files[1:]:  # the first cycle includes discovery
        with open(os.path.join(d, f)) as fh:
            s = json.load(fh)
        costs.append((s["sources"]["last_cycle"], sum(len(x["ports"]) for x in s["devices"])))
    return costs


nl, sy = steady("always"), steady("never")
if check(nl and sy, "no steady cycles recorded for the cost figures"):
    c, nports = nl[-1]
    s, _ = sy[-1]
    print(f"  cost per cycle ({nports} ports): netlink {c['rdma_netlink_syscalls']} netlink syscalls "
          f"({c['rdma_netlink_round_trips']} round trips) + {c['sysfs_syscalls']} sysfs syscalls "
          f"({c['sysfs_file_reads']} files) = {(c['rdma_netlink_syscalls'] + c['sysfs_syscalls']) / nports:.1f}/port; "
          f"sysfs only: {s['sysfs_syscalls']} syscalls ({s['sysfs_file_reads']} files) = {s['sysfs_syscalls'] / nports:.1f}/port")
    if c.get("netdevs"):
        # The requests go out batched (the link dump, then every netdev's
        # ethtool netlink requests in one send): their syscalls are what
        # make vm-strace counts, not a multiple of the requests.
        print(f"  netdev side: {c['ethtool_ioctls']} ethtool ioctls + {c['rtnetlink_round_trips']} rtnetlink/ethtool-netlink requests "
              f"for {c['netdevs']} netdevs a cycle (syscalls: make vm-strace)")

recorded = sorted(os.listdir(os.path.join(OUT, "netlink")))
check(len(recorded) >= 8, f"netlink recordings: {recorded}")

# Attribution: the agent's consumers against `rdma res show qp` grouped by pid → cgroup.
def attribution():
    qps = load("d-res-qp.json")
    cgroups = {}
    with open(os.path.join(OUT, "d-cgroups.txt")) as f:
        for line in f:
            pid, cg = line.rstrip("\n").split("\t", 1)
            cgroups[int(pid)] = cg
    expect = {}  # cgroup → {(device, port): qps}
    for q in qps:
        if "pid" not in q:
            continue
        cg = cgroups.get(q["pid"])
        if not check(cg, f"attribution: QP {q['lqpn']} of pid {q['pid']}, not one of the test's"):
            continue
        key = (q["ifname"], q["port"])
        expect.setdefault(cg, {}).setdefault(key, 0)
        expect[cg][key] += 1
    agent = load("d-agent.json")
    got = {}
    for c in agent["consumers"]:
        got[(c["kind"], c["id"])] = {(p["device"], p["port"]): p["qps"] for p in c["ports"]}
    slurm = [v for cg, v in expect.items() if "job_4242/step_0" in cg]
    kube = [v for cg, v in expect.items() if "kubepods" in cg]
    check(len(slurm) == 1 and len(kube) == 1, f"attribution: rdma res show qp by cgroup: {expect}")
    job = [c for c in agent["consumers"] if c["kind"] == "slurm_job"]
    pod = [c for c in agent["consumers"] if c["kind"] == "pod"]
    check(len(job) == 1 and len(pod) == 1 and len(agent["consumers"]) == 2,
          f"attribution: want one job and one pod, agent has {list(got)}")
    if job and slurm:
        j = job[0]
        check(j["labels"].get("job_id") == "4242" and j["labels"].get("step") == "0"
              and j["labels"].get("user") == "root", f"attribution: job labels {j['labels']}")
        check(got[("slurm_job", j["id"])] == slurm[0] and sum(slurm[0].values()) == 1,
              f"attribution: job QPs {got[('slurm_job', j['id'])]}, kernel {slurm[0]}")
    if pod and kube:
        p = pod[0]
        want = {"namespace": "ml-team", "pod": "trainer-0", "pod_uid": "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
                "container_id": "ab" * 32}
        check(all(p["labels"].get(k) == v for k, v in want.items()), f"attribution: pod labels {p['labels']}")
        check(got[("pod", p["id"])] == kube[0] and sum(kube[0].values()) == 1,
              f"attribution: pod QPs {got[('pod', p['id'])]}, kernel {kube[0]}")
    # The metrics of a running agent's scrape, not only the snapshot.
    def series(name):
        out = {}
        with open(os.path.join(OUT, name)) as f:
            for line in f:
                m = re.match(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$', line.strip())
                if m:
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                    out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
        return out
    def value(s, name, **want):
        hits = [v for l, v in s.get(name, []) if all(l.get(k) == w for k, w in want.items())]
        return hits[0] if len(hits) == 1 else hits
    m = series("d-metrics.txt")
    job_qps = value(m, "rdma_job_qps", device="rxe1", port="1", job_id="4242")
    pod_qps = value(m, "rdma_pod_qps", device="rxe0", port="1", namespace="ml-team", pod="trainer-0",
                    pod_uid="1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")
    check(job_qps == 1 and pod_qps == 1,
          f"attribution metrics: rdma_job_qps{{job_id=4242}} {job_qps}, rdma_pod_qps{{pod=trainer-0}} {pod_qps}")
    check(value(m, "rdma_monitor_attribution_pid_namespace_host") == 1,
          f"attribution metrics: pid namespace gauge {m.get('rdma_monitor_attribution_pid_namespace_host')}")
    # PID reuse: the unit that took the server's PID holds its own QP; the job is gone.
    with open(os.path.join(OUT, "d-reuse.txt")) as f:
        old, new = f.read().split()
    reuse_qps = [q for q in load("d-reuse-qp.json") if q.get("pid") == int(new)]
    r = series("d-metrics-reuse.txt")
    unit_qps = value(r, "rdma_unit_qps", device="rxe1", port="1", unit="reuse.service")
    check(old == new, f"attribution: PID {old} not reused (got {new}): ns_last_pid missing?")
    check(len(reuse_qps) == 1, f"attribution: rdma res show qp for the reused PID {new}: {reuse_qps}")
    check(unit_qps == 1 and "rdma_job_qps" not in r,
          f"attribution after PID reuse: unit {unit_qps}, job series {r.get('rdma_job_qps')}")
    print(f"  attribution metrics: rdma_job_qps{{job_id=\"4242\"}} {job_qps}, rdma_pod_qps{{pod=\"trainer-0\"}} {pod_qps}; "
          f"PID {new} reused by reuse.service: rdma_unit_qps {unit_qps}, no job series")
    after = load("d-agent-after.json")
    check(after["consumers"] == [], f"attribution: consumers left after the processes exited: {after['consumers']}")
    st = agent["attribution"]
    check(st["errors"] == [] and st["unattributed"]["user_qps"] == 0,
          f"attribution status: {st}")
    print(f"  attribution: job 4242 step 0 and pod ml-team/trainer-0 hold 1 QP each, as rdma res shows; "
          f"{st['unattributed']['kernel_qps']} kernel QPs; gone after exit")
    for on in ("true", "false"):
        d = os.path.join(OUT, f"attr-{on}")
        files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
        with open(os.path.join(d, files[-1])) as fh:
            s = json.load(fh)
        c = s["sources"]["last_cycle"]
        extra = ""
        if s.get("attribution"):
            extra = f", attribution pass {s['attribution']['duration_seconds'] * 1e3:.2f} ms, {s['attribution']['round_trips']} round trips"
        print(f"  steady cycle, attribution {on}: {c['rdma_netlink_round_trips']} netlink round trips, "
              f"{c['rdma_netlink_syscalls']} netlink syscalls{extra}")


attribution()

if failures:
    print(f"FAILED: {len(failures)} mismatches")
    for f in failures[:60]:
        print("  -", f)
    sys.exit(1)
print("rxe VM check: all equal")
