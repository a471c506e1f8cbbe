#!/usr/bin/env python3
"""make bench-compare: rdma-monitor against node_exporter's infiniband
collector on the same sysfs tree, at the same cadence (a cycle and a scrape
every 100 ms for 10 s each), measured from /proc: CPU per cycle and RSS."""
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# node_exporter's collector fails as a whole on node-mixed (one quirky file
# stops every device): the comparison runs on the 16-HCA tree, which it reads.
TREE = os.path.join(REPO, "fixtures/sysfs/node-16hca")
AGENT = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "x86_64-unknown-linux-musl/release/rdma-monitor")
PERIOD, SECONDS = 0.1, 10.0
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def cpu_split(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        d = dict(l.split(":", 1) for l in f if ":" in l)
    return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0])


def series(url, prefix):
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(1 for l in text.splitlines() if l.startswith(prefix))


def run(name, argv, env, port, prefix):
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(1.0)  # past start-up
    u0, s0 = cpu_split(p.pid)
    c0, t0, scrapes, size = u0 + s0, time.monotonic(), 0, 0
    while time.monotonic() - t0 < SECONDS:
        size = len(urllib.request.urlopen(url, timeout=5).read())
        scrapes += 1
        time.sleep(max(0.0, PERIOD - (time.monotonic() - t0) % PERIOD))
    elapsed = time.monotonic() - t0
    n_series = series(url, prefix)
    u1, s1 = cpu_split(p.pid)
    cpu = u1 + s1 - c0
    rss, hwm = rss_kib(p.pid)
    p.terminate()
    p.wait(timeout=10)
    cycles = elapsed / PERIOD
    return {"name": name, "cpu_ms_per_cycle": cpu / cycles * 1000, "user_ms": (u1 - u0) / cycles * 1000, "sys_ms": (s1 - s0) / cycles * 1000, "rss_kib": rss, "hwm_kib": hwm, "scrapes": scrapes, "scrape_bytes": size, "series": n_series}


def main():
    if not os.path.exists(AGENT):
        sys.exit("build the static agent first (make static)")
    ne = subprocess.run(["sh", "-c", "command -v prometheus-node-exporter || command -v node_exporter"], capture_output=True, text=True).stdout.strip()
    if not ne:
        sys.exit("prometheus-node-exporter is not installed")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "RDMA_MON_GENERAL__SYSFS_ROOT": TREE, "RDMA_MON_GENERAL__POLL_INTERVAL": str(PERIOD),
           "RDMA_MON_PROMETHEUS__LISTEN_ADDRESS": "127.0.0.1", "RDMA_MON_PROMETHEUS__PORT": str(port),
           "RDMA_MON_GENERAL__SNAPSHOT_DIR": "/tmp/rdma-monitor-bench", "RDMA_MON_GENERAL__LOG_LEVEL": "error"}
    a = run("rdma-monitor", [AGENT], env, port, "rdma_")
    port = free_port()
    n = run("node_exporter infiniband", [ne, "--collector.disable-defaults", "--collector.infiniband",
                                          f"--path.sysfs={TREE}", f"--web.listen-address=127.0.0.1:{port}"], {"PATH": "/usr/bin:/bin"}, port, "node_infiniband_")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"tree: fixtures/sysfs/node-16hca (16 mlx5 RoCE ports); a cycle and a scrape every {PERIOD * 1000:.0f} ms for {SECONDS:.0f} s")
    print(f"{'':28} {'CPU ms/cycle':>13} {'(user':>7} {'sys)':>6} {'RSS MiB':>8} {'peak RSS MiB':>13} {'scrape bytes':>13} {'series':>7}")
    for r in (a, n):
        print(f"{r['name']:28} {r['cpu_ms_per_cycle']:13.3f} {r['user_ms']:7.2f} {r['sys_ms']:6.2f} {r['rss_kib'] / 1024:8.2f} {r['hwm_kib'] / 1024:13.2f} {r['scrape_bytes']:13} {r['series']:7}")
    print(f"{'ratio node_exporter / agent':28} {n['cpu_ms_per_cycle'] / a['cpu_ms_per_cycle']:13.1f} "
          f"{n['rss_kib'] / a['rss_kib']:8.1f} {n['hwm_kib'] / a['hwm_kib']:13.1f}")


main()
