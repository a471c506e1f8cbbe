#!/usr/bin/env python3
"""make bench-http: the agent and node_exporter side by side under the two
loads the exporter issue names, on the same machine at the same time.

  slowloris: 64 connections send half a request head, then one byte every
             2 s; meanwhile one legitimate scrape a second (60 s).
  flood:     200 concurrent scrapers, each scraping back to back (30 s).
  auth flood: basic auth on (bcrypt cost 10, as htpasswd -B), 16 clients
             sending a new wrong password each time, back to back; meanwhile
             one scrape with the right password every 0.5 s (AUTH_FLOOD_SECS,
             default 20 s).

For each server: scrapes answered / attempted, connection resets and other
errors, latency p50/p99/max of answered scrapes, and the server's peak RSS
(VmHWM). Both serve the 16-HCA fixture tree (node_exporter with only its
infiniband collector, through --path.sysfs: the same files).
Durations: SLOWLORIS_SECS, FLOOD_SECS (defaults 60 and 30)."""
import os
import socket
import tempfile
import subprocess
import sys
import threading
import time

from cadence import HTTP_THREAD, cpu_ns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AGENT", os.path.join(REPO, "target/x86_64-unknown-linux-musl/release/rdma-monitor"))
TREE = os.path.join(REPO, "fixtures/sysfs/node-16hca")
SLOW_SECS = float(os.environ.get("SLOWLORIS_SECS", 60))
FLOOD_SECS = float(os.environ.get("FLOOD_SECS", 30))
AUTH_SECS = float(os.environ.get("AUTH_FLOOD_SECS", 20))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scrape(port, timeout=10.0, headers=b""):
    """One GET /metrics on a new connection: (latency s, None) or (None, error kind)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
            buf = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
        if not buf.startswith(b"HTTP/1.1 200"):
            return None, "status " + buf[:12].decode(errors="replace")
        return time.monotonic() - t0, None
    except ConnectionResetError:
        return None, "reset"
    except socket.timeout:
        return None, "timeout"
    except OSError as e:
        return None, type(e).__name__


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def report(name, lat, errs, attempted, pid):
    kinds = {}
    for e in errs:
        kinds[e] = kinds.get(e, 0) + 1
    ms = lambda v: f"{v * 1000:.1f} ms"
    print(f"  {name:<14} answered {len(lat)}/{attempted}  errors {kinds or 'none'}  "
          f"p50 {ms(pct(lat, 0.5))}  p99 {ms(pct(lat, 0.99))}  max {ms(max(lat) if lat else float('nan'))}  "
          f"peak RSS {hwm_kib(pid) / 1024:.1f} MiB", flush=True)


def slowloris(port, pid, name):
    stop = time.monotonic() + SLOW_SECS
    socks = []
    for _ in range(64):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass

    def drip():
        # One byte every 2 s on each connection; reopen the ones the server closed.
        while time.monotonic() < stop:
            for i, s in enumerate(socks):
                try:
                    s.sendall(b"X")
                except OSError:
                    try:
                        s.close()
                        socks[i] = socket.create_connection(("127.0.0.1", port), timeout=5)
                        socks[i].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    except OSError:
                        pass
            time.sleep(2)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    lat, errs, n = [], [], 0
    while time.monotonic() < stop:
        t0 = time.monotonic()
        l, e = scrape(port)
        n += 1
        (lat.append(l) if l is not None else errs.append(e))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
    t.join()
    for s in socks:
        s.close()
    report(name, lat, errs, n, pid)


def flood(port, pid, name):
    stop = time.monotonic() + FLOOD_SECS
    lat, errs, lock = [], [], threading.Lock()

    def worker():
        while time.monotonic() < stop:
            l, e = scrape(port)
            with lock:
                (lat.append(l) if l is not None else errs.append(e))

    ts = [threading.Thread(target=worker) for _ in range(200)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    report(name, lat, errs, len(lat) + len(errs), pid)


def basic(user, password):
    import base64
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


def auth_flood(port, pid, name):
    """16 clients with new wrong passwords back to back; a right one every 0.5 s."""
    stop = time.monotonic() + AUTH_SECS
    statuses, lock = {}, threading.Lock()

    def flooder(i):
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              + basic("prometheus", f"guess-{i}-{n}") + b"\r\n")
                    head = s.recv(12)
                k = head[9:12].decode(errors="replace") or "closed"
            except OSError as e:
                k = type(e).__name__
            with lock:
                statuses[k] = statuses.get(k, 0) + 1

    ts = [threading.Thread(target=flooder, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    lat, errs, n = [], [], 0
    right = basic("prometheus", "right-password")
    while time.monotonic() < stop:
        t0 = time.monotonic()
        l, e = scrape(port, headers=right)
        n += 1
        (lat.append(l) if l is not None else errs.append(e))
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))
    for t in ts:
        t.join()
    report(name, lat, errs, n, pid)
    print(f"  {'':<14} the flood's answers by status: {dict(sorted(statuses.items()))}", flush=True)


def auth_servers(env, ne):
    """The agent and node_exporter with the same basic-auth-only web.yml, one at a time."""
    d = tempfile.mkdtemp()
    web = os.path.join(d, "web.yml")
    # The agent's own hash-password: bcrypt cost 10, what htpasswd -B uses.
    hashed = subprocess.run([AGENT, "hash-password"], input="right-password\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    with open(web, "w") as f:
        f.write(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    print(f"auth flood: 16 clients with new wrong passwords back to back, a right one every 0.5 s, "
          f"{AUTH_SECS:.0f} s each, one server at a time (bcrypt cost 10)")
    for name, argv, port_env in (
            ("rdma-monitor", [AGENT, "--web.config.file", web], True),
            ("node_exporter", [ne, "--collector.disable-defaults", "--collector.infiniband",
                               f"--path.sysfs={TREE}", f"--web.config.file={web}"], False)):
        port = free_port()
        if port_env:
            p = subprocess.Popen(argv, env=dict(env, RDMA_MON_PROMETHEUS__PORT=str(port)), stderr=subprocess.DEVNULL)
        else:
            p = subprocess.Popen(argv + [f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
        try:
            right = basic("prometheus", "right-password")
            for _ in range(100):
                if scrape(port, 2, right)[0] is not None:
                    break
                time.sleep(0.1)
            auth_flood(port, p.pid, name)
        finally:
            p.terminate()
            p.wait()


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def scrape_cost(label, pid, get, n=300):
    """CPU of the server per scrape over n back-to-back scrapes, and bytes per answer."""
    get()
    t0 = cpu_ticks(pid)
    size = 0
    for _ in range(n):
        size = get()
    ms = (cpu_ticks(pid) - t0) * 1000 / os.sysconf("SC_CLK_TCK") / n
    print(f"  {label:<34} {ms:6.2f} ms CPU per scrape, {size} bytes", flush=True)


def scrape_cost_per_set(label, pid, get, n=20):
    """CPU of the HTTP threads per scrape at a scrape a second, so that each
    scrape meets a new set (a cycle a second): with gzip, each compresses."""
    get()
    time.sleep(1.0)
    t0 = cpu_ns(pid, HTTP_THREAD)
    size = 0
    for _ in range(n):
        size = get()
        time.sleep(1.0)
    ms = (cpu_ns(pid, HTTP_THREAD) - t0) / 1e6 / n
    print(f"  {label:<34} {ms:6.2f} ms CPU per scrape (HTTP threads), {size} bytes", flush=True)


def http_get(port, headers=b"", wrap=None):
    def get():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if wrap:
            s = wrap(s)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: rdma-monitor\r\nConnection: close\r\n" + headers + b"\r\n")
        buf = bytearray()
        while (b := s.recv(65536)):
            buf += b
        s.close()
        assert buf.startswith(b"HTTP/1.1 200"), buf[:40]
        return len(buf) - buf.index(b"\r\n\r\n") - 4
    return get


def tls_costs(env):
    """The same agent over mTLS + basic auth, with the Secrets web-secret.sh makes."""
    import base64, ssl, tempfile, yaml
    d = tempfile.mkdtemp()
    made = subprocess.run([os.path.join(REPO, "deploy/kubernetes/web-secret.sh")], capture_output=True, text=True,
                          check=True, env=dict(os.environ, RDMA_MONITOR=AGENT)).stdout
    files = {}
    for doc in yaml.safe_load_all(made):
        sub = os.path.join(d, doc["metadata"]["name"])
        os.makedirs(sub)
        for k, v in doc["stringData"].items():
            open(os.path.join(sub, k), "w").write(v)
            files[k] = os.path.join(sub, k)
    port = free_port()
    agent = subprocess.Popen([AGENT, "--web.config.file", files["web.yml"]],
                             env=dict(env, RDMA_MON_PROMETHEUS__PORT=str(port)), stderr=subprocess.DEVNULL)
    try:
        ctx = ssl.create_default_context(cafile=files["ca.crt"])
        ctx.load_cert_chain(files["client.crt"], files["client.key"])
        wrap = lambda s: ctx.wrap_socket(s, server_hostname="rdma-monitor")
        auth = b"Authorization: Basic " + base64.b64encode(b"prometheus:" + open(files["password"], "rb").read()) + b"\r\n"
        get = http_get(port, auth, wrap)
        for _ in range(100):
            try:
                get()
                break
            except (OSError, AssertionError):
                time.sleep(0.1)
        scrape_cost("mTLS + basic auth (a handshake each)", agent.pid, get)
        scrape_cost("mTLS + basic auth + gzip", agent.pid, http_get(port, auth + b"Accept-Encoding: gzip\r\n", wrap))
    finally:
        agent.terminate()
        agent.wait()


def wait_up(port):
    for _ in range(100):
        if scrape(port, 2)[0] is not None:
            return
        time.sleep(0.1)
    sys.exit(f"nothing answers on port {port}")


def main():
    ne = subprocess.run(["sh", "-c", "command -v prometheus-node-exporter || command -v node_exporter"],
                        capture_output=True, text=True).stdout.strip()
    if not ne:
        sys.exit("node_exporter is missing (tests/deps.sh test installs prometheus-node-exporter)")
    aport, nport = free_port(), free_port()
    env = dict(os.environ, RDMA_MON_GENERAL__SYSFS_ROOT=TREE, RDMA_MON_GENERAL__POLL_INTERVAL="1",
               RDMA_MON_PROMETHEUS__LISTEN_ADDRESS="127.0.0.1", RDMA_MON_PROMETHEUS__PORT=str(aport),
               RDMA_MON_GENERAL__SNAPSHOT_DIR="/tmp/rdma-monitor-bench-http", RDMA_MON_GENERAL__LOG_LEVEL="error")
    agent = subprocess.Popen([AGENT], env=env, stderr=subprocess.DEVNULL)
    node = subprocess.Popen([ne, "--collector.disable-defaults", "--collector.infiniband",
                             f"--web.listen-address=127.0.0.1:{nport}", f"--path.sysfs={TREE}"],
                            stderr=subprocess.DEVNULL)
    try:
        wait_up(aport)
        wait_up(nport)
        version = subprocess.run([ne, "--version"], capture_output=True, text=True)
        print(f"{AGENT} vs {(version.stdout or version.stderr).splitlines()[0]}, 16-HCA tree, "
              f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
        print(f"slowloris: 64 connections dripping a request head, one scrape a second, {SLOW_SECS:.0f} s each")
        threads = [threading.Thread(target=slowloris, args=(aport, agent.pid, "rdma-monitor")),
                   threading.Thread(target=slowloris, args=(nport, node.pid, "node_exporter"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # One server at a time: 400 client threads on 2 cores would measure the client.
        print(f"flood: 200 concurrent scrapers, {FLOOD_SECS:.0f} s each, one server at a time")
        flood(aport, agent.pid, "rdma-monitor")
        flood(nport, node.pid, "node_exporter")
        print("scrape cost of the agent, 300 back-to-back scrapes each (CPU from /proc/PID/stat; gzip: a set, made each second, is compressed once for all the scrapes until the next)")
        scrape_cost("plain", agent.pid, http_get(aport))
        scrape_cost("gzip", agent.pid, http_get(aport, b"Accept-Encoding: gzip\r\n"))
        print("the same, a scrape a second (a new set each: gzip compresses each), 20 scrapes")
        scrape_cost_per_set("plain", agent.pid, http_get(aport))
        scrape_cost_per_set("gzip", agent.pid, http_get(aport, b"Accept-Encoding: gzip\r\n"))
        tls_costs(env)
        auth_servers(env, ne)
    finally:
        agent.terminate()
        node.terminate()
        agent.wait()
        node.wait()


if __name__ == "__main__":
    main()
