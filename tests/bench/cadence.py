#!/usr/bin/env python3
"""make bench-cadence: the shipped static agent, the floor program
(tests/bench/floor.c), "floor + serve" (the same program also answering each
scrape with the agent's own text, compressed at most once a second by the
fastest deflate measured, ISA-L's igzip: an exporter reduced to its reads and
its answers, with no parsing and no rendering) and node_exporter's infiniband
collector side by side
on the same sysfs tree, at the agent's real cadence: a cycle a second and one
scrape a second of the agent and of node_exporter, for SECONDS (30) seconds,
all running at once, the agents, the floor and floor + serve each started in
a slot of its own within the second, the scrapes (and with them
node_exporter's reads) and the counter writer in two more (see bench: reading the same files
in the same milliseconds, they slowed each other). CPU is the sum of /proc/<pid>/task/*/schedstat
(time on CPU, ns) over the window (for the agent also that of its HTTP
threads, http and http-N, alone); RSS is smaps_rollup's Rss at the end
(exact, where VmRSS is a per-CPU batched count: see rss_kib). Trees: the
16-HCA fixture and a 64-HCA tree made from it (four copies renamed), so the
cost per HCA can be compared. Each tree is run twice: as it is (static), and
changing as a busy node's would (a writer in this script, outside the
measured processes, adds to every port's data and packet counters and to a
quarter of its hw_counters each second, in place, so held files see it).
Environment: BENCH_SECONDS (30), ROUNDS (3: windows per tree, every process
started afresh for each; medians reported, and the range of the ratio to the
floor: one window varies by ±15 % on a shared 2-core machine), TREES (16,64),
KINDS (static,changing), AGENT (the binary; several, comma-separated, run side
by side: to compare builds), ENCODING (gzip: each scrape asks for
`Accept-Encoding: gzip` as Prometheus's does unless told not to, so every
set is compressed once; identity: plain text)."""
import glob
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from statistics import median

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
AGENTS = os.environ.get("AGENT", os.path.join(TARGET, "x86_64-unknown-linux-musl/release/rdma-monitor")).split(",")
TREE16 = os.path.join(REPO, "fixtures/sysfs/node-16hca")
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
ROUNDS = max(1, int(os.environ.get("ROUNDS", "3")))
ENCODING = os.environ.get("ENCODING", "gzip")
if ENCODING not in ("gzip", "identity"):
    sys.exit(f"ENCODING is gzip or identity, not {ENCODING}")
PCI = re.compile(r"0000:([0-9a-f]{2}):00\.0")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


HTTP_THREAD = re.compile(r"http(-\d+)?")


def cpu_ns(pid, only=None):
    """Time on CPU of every live thread of pid (schedstat's first field), or
    of those whose name matches `only`."""
    total = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            if only and not only.fullmatch(open(f"{task}/comm").read().strip()):
                continue
            total += int(open(f"{task}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def rss_kib(pid):
    """Resident memory from a walk of the page tables (smaps_rollup's Rss).
    Not VmRSS: since Linux 6.2 ("mm: convert mm's rss stats into
    percpu_counter"; per-thread caches before) /proc/PID/status reads the
    counts without the per-CPU parts not yet folded in (up to a batch of 32
    pages per CPU and counter), so VmRSS can be off by several hundred KiB
    (seen here: 6.15 MiB VmRSS beside 5.67 MiB Rss, read one after the
    other)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Rss:"))


def make_tree(copies, out):
    """copies × the 16-HCA fixture: device k*16+i is mlx5_{k*16+i} on bus
    0x10+k*16+i with netdev eth{k*16+i}, every file otherwise the same."""
    os.makedirs(os.path.join(out, "class/infiniband"))
    src_pci = os.path.join(TREE16, "devices/pci0000:00/0000:00:02.0")
    dst_pci = os.path.join(out, "devices/pci0000:00/0000:00:02.0")
    os.makedirs(dst_pci)
    for pci in sorted(os.listdir(src_pci)):
        m = PCI.fullmatch(pci)
        if not m:
            continue
        i = int(m.group(1), 16) - 0x10
        for k in range(copies):
            j = k * 16 + i
            new_pci = f"0000:{0x10 + j:02x}:00.0"
            d = os.path.join(dst_pci, new_pci)
            shutil.copytree(os.path.join(src_pci, pci), d, symlinks=True)
            ib = os.path.join(d, "infiniband")
            os.rename(os.path.join(ib, f"mlx5_{i}"), os.path.join(ib, f"mlx5_{j}"))
            os.rename(os.path.join(d, "net", f"eth{i}"), os.path.join(d, "net", f"eth{j}"))
            dev = os.path.join(ib, f"mlx5_{j}")
            os.remove(os.path.join(dev, "device"))
            os.symlink("../../../" + new_pci, os.path.join(dev, "device"))
            for rel in ("node_desc", "ports/1/gid_attrs/ndevs/0"):
                p = os.path.join(dev, rel)
                if os.path.exists(p):
                    text = open(p).read().replace(f"mlx5_{i}", f"mlx5_{j}").replace(f"eth{i}", f"eth{j}")
                    open(p, "w").write(text)
            for rel in ("node_guid", "sys_image_guid"):
                p = os.path.join(dev, rel)
                g = open(p).read().strip().split(":")
                g[2] = f"{j:04x}"
                open(p, "w").write(":".join(g) + "\n")
            os.symlink(f"../../devices/pci0000:00/0000:00:02.0/{new_pci}/infiniband/mlx5_{j}",
                       os.path.join(out, "class/infiniband", f"mlx5_{j}"))
    drivers = os.path.join(TREE16, "bus")
    if os.path.isdir(drivers):
        shutil.copytree(drivers, os.path.join(out, "bus"), symlinks=True)
    return out


# What a busy port moves every second: data and packet counters.
MOVING = ("port_xmit_data", "port_rcv_data", "port_xmit_packets", "port_rcv_packets",
          "unicast_xmit_packets", "unicast_rcv_packets", "port_xmit_wait")


class Changer(threading.Thread):
    """Every second, adds to each port's MOVING counters and to a quarter of
    its hw_counters (a different quarter each second). Written in place with
    pwrite at offset 0: values only grow, so a longer text covers the old one
    and no truncation leaves a reader an empty file; readers holding the file
    open see the new value."""

    def __init__(self, tree):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.files = []  # (path, is a hw counter)
        class_dir = os.path.join(tree, "class/infiniband")
        for dev in sorted(os.listdir(class_dir)):
            ports = os.path.join(class_dir, dev, "ports")
            for port in sorted(os.listdir(ports)):
                for name in MOVING:
                    f = os.path.join(ports, port, "counters", name)
                    if os.path.exists(f):
                        self.files.append((f, False))
                hw = os.path.join(ports, port, "hw_counters")
                if os.path.isdir(hw):
                    self.files += [(os.path.join(hw, n), True) for n in sorted(os.listdir(hw)) if n != "lifespan"]
        self.values = {f: int(open(f).read().split()[0]) for f, _ in self.files}
        self.per_second = 0
        # When in each second it writes (bench() gives it a slot of its own).
        self.phase = 0.0

    def run(self):
        tick = 0
        while not self.stop.wait(1.0 - (time.monotonic() - self.phase) % 1.0):
            writes = 0
            for i, (f, hw) in enumerate(self.files):
                if hw and i % 4 != tick % 4:
                    continue
                self.values[f] += 1 + (i * 7919 + tick * 104729) % 100_000
                fd = os.open(f, os.O_WRONLY)
                try:
                    os.pwrite(fd, f"{self.values[f]}\n".encode(), 0)
                finally:
                    os.close(fd)
                writes += 1
            self.per_second = writes
            tick += 1


def agent_env(tree, port, snapshots):
    """The agent's environment in the benches: `tree` polled once a second,
    metrics on 127.0.0.1:`port`, snapshots in `snapshots`, errors only."""
    return {"PATH": "/usr/bin:/bin", "RDMA_MON_GENERAL__SYSFS_ROOT": tree,
            "RDMA_MON_GENERAL__POLL_INTERVAL": "1", "RDMA_MON_PROMETHEUS__LISTEN_ADDRESS": "127.0.0.1",
            "RDMA_MON_PROMETHEUS__PORT": str(port), "RDMA_MON_GENERAL__SNAPSHOT_DIR": snapshots,
            "RDMA_MON_GENERAL__LOG_LEVEL": "error"}


def wait_http(url):
    for _ in range(200):
        try:
            return urllib.request.urlopen(url, timeout=1).read()
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{url} never answered")


SERVE = "floor + serve"


def bench(tree, hcas, floor, ne, work, changer):
    """One window. Each agent, the floor, the scrapes (node_exporter reads
    when scraped) and the writer work in a slot of their own within each
    second: processes are started a slot apart, and a process's first read
    follows its start by its set-up (tens of milliseconds: the agent's
    discovery, the floor's opens), well inside a slot. Started together,
    they read the same files in the same milliseconds and whichever came
    second paid for it (the same two builds swapped places in the ranking
    when their start order was swapped)."""
    procs = {}
    agents = set()
    # Slots: each agent's, then the floor's, floor + serve's, the scrapes', the writer's.
    floor_slot, serve_slot, scrape_slot, writer_slot = (len(AGENTS) + i for i in range(4))
    slot = 1.0 / (writer_slot + 1)
    base = time.monotonic()

    def at_slot(i):
        time.sleep(max(0.0, base + i * slot - time.monotonic()))

    for i, agent in enumerate(AGENTS):
        at_slot(i)
        aport = free_port()
        env = agent_env(tree, aport, os.path.join(work, f"snapshots-{hcas}-{i}"))
        name = "rdma-monitor (static)" if len(AGENTS) == 1 else os.path.basename(agent)[:24]
        agents.add(name)
        if i == 0:
            first = name
        procs[name] = (subprocess.Popen([agent], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                       f"http://127.0.0.1:{aport}/metrics")
    nport = free_port()
    at_slot(floor_slot)
    procs["floor"] = (subprocess.Popen([floor, tree, "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True), None)
    if ne:
        procs["node_exporter"] = (subprocess.Popen(
            [ne, "--collector.disable-defaults", "--collector.infiniband", f"--path.sysfs={tree}",
             f"--web.listen-address=127.0.0.1:{nport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            f"http://127.0.0.1:{nport}/metrics")
    try:
        files = procs["floor"][0].stdout.readline().split()[0]
        for p, url in procs.values():
            if url:
                wait_http(url)
        # floor + serve answers with the first agent's own text of this tree,
        # started in its slot of the next second.
        body = os.path.join(work, f"body-{hcas}.txt")
        with open(body, "wb") as f:
            f.write(wait_http(procs[first][1]))
        sport = free_port()
        time.sleep((base + serve_slot * slot - time.monotonic()) % 1.0)
        procs[SERVE] = (subprocess.Popen([floor, tree, "1", str(sport), body], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL), f"http://127.0.0.1:{sport}/metrics")
        wait_http(procs[SERVE][1])
        if changer:
            changer.phase = base + writer_slot * slot
            changer.start()
        # Past discovery and the first cycles, at the scrapes' slot.
        t0 = time.monotonic() + 3.0
        t0 += (base + scrape_slot * slot - t0) % 1.0
        time.sleep(t0 - time.monotonic())
        start = {name: cpu_ns(p.pid) for name, (p, _) in procs.items()}
        start_http = {name: cpu_ns(p.pid, HTTP_THREAD) for name, (p, _) in procs.items()}
        scrapes = sizes = 0
        threads0 = {name: threads(p.pid) for name, (p, _) in procs.items()}
        while (now := time.monotonic() - t0) < SECONDS:
            for p, url in procs.values():
                if url:
                    req = urllib.request.Request(url, headers={"Accept-Encoding": ENCODING})
                    sizes = len(urllib.request.urlopen(req, timeout=5).read())
                    scrapes += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
        elapsed = time.monotonic() - t0
        out = {}
        for name, (p, _) in procs.items():
            http_ns = cpu_ns(p.pid, HTTP_THREAD) - start_http[name]
            out[name] = {"cpu_us_s": (cpu_ns(p.pid) - start[name]) / 1e3 / elapsed, "rss": rss_kib(p.pid),
                         "http_us_s": http_ns / 1e3 / elapsed if name in agents else None,
                         "threads": f"{threads0[name]}->{threads(p.pid)}"}
    finally:
        if changer:
            changer.stop.set()
            changer.join()
        for p, _ in procs.values():
            p.terminate()
        for p, _ in procs.values():
            p.wait(timeout=10)
    return files, out


def median_window(windows):
    """Each process's medians over the windows: CPU, HTTP, RSS, and the ratio
    to the floor taken window by window (the floor ran beside it in each),
    with every window's ratio for the range. One window of the same build
    was seen anywhere from 1.33 to 2.04 × floor on this kind of machine."""
    out = {}
    for name in windows[0]:
        rows = [w[name] for w in windows]
        ratios = [w[name]["cpu_us_s"] / w["floor"]["cpu_us_s"] for w in windows]
        http = [r["http_us_s"] for r in rows if r["http_us_s"] is not None]
        out[name] = {"cpu_us_s": median(r["cpu_us_s"] for r in rows),
                     "http_us_s": median(http) if http else None,
                     "rss": median(r["rss"] for r in rows),
                     "threads": rows[-1]["threads"],
                     "ratio": median(ratios), "ratios": ratios}
    return out


def main():
    for agent in AGENTS:
        if not os.path.exists(agent):
            sys.exit(f"no static agent at {agent}: make static")
    work = tempfile.mkdtemp(prefix="rdma-monitor-cadence-")
    floor = os.path.join(work, "floor")
    subprocess.run(["cc", "-O2", "-Wall", "-Wno-format-truncation", "-o", floor,
                    os.path.join(REPO, "tests/bench/floor.c"), "-lisal"], check=True)
    ne = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not ne:
        print("node_exporter is not installed (tests/deps.sh bench): left out")
    trees = [int(t) for t in os.environ.get("TREES", "16,64").split(",")]
    kinds = os.environ.get("KINDS", "static,changing").split(",")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; " + ", ".join(f"{a} ({os.path.getsize(a) / 1048576:.2f} MiB)" for a in AGENTS))
    print(f"a cycle a second and a scrape a second each (Accept-Encoding: {ENCODING}), {SECONDS:.0f} s, all at once, {ROUNDS} windows each "
          "(all processes started afresh for each); "
          "CPU from /proc/PID/task/*/schedstat (HTTP: the agent's threads http and http-N), "
          "RSS = smaps_rollup's Rss at the end")
    results = {}
    try:
        for hcas in trees:
            for kind in kinds:
                changing = kind == "changing"
                if hcas == 16 and not changing:
                    tree = TREE16
                else:
                    tree = os.path.join(work, f"tree-{hcas}-{kind}")
                    if not os.path.exists(tree):
                        make_tree(hcas // 16, tree)
                windows = []
                for _ in range(ROUNDS):
                    # A thread starts once: a writer per window.
                    changer = Changer(tree) if changing else None
                    files, r = bench(tree, hcas, floor, ne, work, changer)
                    windows.append(r)
                r = median_window(windows)
                results[(hcas, kind)] = r
                moved = f", {changer.per_second} counter files changed a second" if changer else ""
                print(f"\n{hcas} HCAs, {kind} ({files} files a cycle{moved}; median of {ROUNDS} windows, "
                      "× floor: the median of each window's ratio, and its range):")
                print(f"  {'':24} {'CPU µs/s':>9} {'× floor':>8} {'range':>11} {'RSS MiB':>8} {'threads':>8} {'of it HTTP':>10}")
                for name, v in r.items():
                    http = "" if v["http_us_s"] is None else f"{v['http_us_s']:10.0f}"
                    lo, hi = min(v["ratios"]), max(v["ratios"])
                    print(f"  {name:24} {v['cpu_us_s']:9.0f} {v['ratio']:8.2f} {f'{lo:.2f}–{hi:.2f}':>11} "
                          f"{v['rss'] / 1024:8.2f} {v['threads']:>8} {http}")
        if len(trees) > 1:
            lo, hi = min(trees), max(trees)
            for kind in kinds:
                print(f"\n{hi} HCAs / {lo} HCAs, {kind} (linear: {hi / lo:.1f}):")
                for name in results[(lo, kind)]:
                    print(f"  {name:24} CPU {results[(hi, kind)][name]['cpu_us_s'] / results[(lo, kind)][name]['cpu_us_s']:.2f}×")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
