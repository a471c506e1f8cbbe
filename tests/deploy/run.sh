#!/usr/bin/env bash
# make deploy-test: every install path, exercised here.
#  1. the container image (tests/deploy/image.sh: podman, or the same root in a chroot)
#  2. the systemd unit: systemd-analyze verify
#  3. the Kubernetes manifests: schemas (tests/deploy/k8s.py)
#  4. the alert rules: promtool check + promtool test rules
#  5. the Grafana dashboard: every metric its queries use is in a real scrape
#     (its netdev families: collectors::dashboard_tests, in make unit-test)
#  6. a real Prometheus on 127.0.0.1 scraping the agent on a fixture tree over
#     HTTPS with a client certificate and a password, set up from the Secrets
#     deploy/kubernetes/web-secret.sh makes and the PodMonitor's settings:
#     target up, series there, rate() over an agent counter answers
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
OUT=$REPO/target/deploy-test
rm -rf "$OUT"; mkdir -p "$OUT"
# kubernetes-validate: from PATH, or the venv tests/deps.sh makes.
[ -x target/pyenv/bin/kubernetes-validate ] && export PATH=$REPO/target/pyenv/bin:$PATH
need() { command -v "$1" >/dev/null || { echo "deploy-test: $1 is missing (tests/deps.sh test installs it)" >&2; exit 1; }; }
need promtool; need prometheus; need systemd-analyze; need curl; need kubernetes-validate
cargo build --release --bin rdma-monitor
AGENT=${CARGO_TARGET_DIR:-$REPO/target}/release/rdma-monitor

echo "== 1. image"
tests/deploy/image.sh

echo "== 2. systemd unit"
sed "s|/usr/local/bin/rdma-monitor|$AGENT|" deploy/systemd/rdma-monitor.service > "$OUT/rdma-monitor.service"
systemd-analyze verify "$OUT/rdma-monitor.service"
echo "systemd-analyze verify: clean"
# With the TLS drop-in: the unit as systemd merges it (a repeated [Service]
# section adds to the first).
cat "$OUT/rdma-monitor.service" deploy/systemd/tls.conf > "$OUT/rdma-monitor-tls.service"
systemd-analyze verify "$OUT/rdma-monitor-tls.service"
grep -q '^Environment=RDMA_MON_PROMETHEUS__WEB_CONFIG_FILE=%d/web.yml' deploy/systemd/tls.conf
echo "systemd-analyze verify with the TLS drop-in: clean"

echo "== 3. Kubernetes"
export RDMA_MONITOR=$AGENT
python3 tests/deploy/k8s.py

echo "== 4. alert rules"
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)

# The Secrets as the kubelet would mount them: one file per key.
WEB=$OUT/web; SCRAPE=$OUT/scrape
deploy/kubernetes/web-secret.sh > "$OUT/web-secrets.yaml"
python3 - "$OUT/web-secrets.yaml" "$WEB" "$SCRAPE" <<'PY'
import os, sys, yaml
dirs = {"rdma-monitor-web": sys.argv[2], "rdma-monitor-scrape": sys.argv[3]}
for d in yaml.safe_load_all(open(sys.argv[1])):
    out = dirs[d["metadata"]["name"]]
    os.makedirs(out, exist_ok=True)
    for k, v in d["stringData"].items():
        with open(os.path.join(out, k), "w") as f:
            f.write(v)
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
APORT=$(free_port); PPORT=$(free_port); HPORT=$(free_port)
RDMA_MON_GENERAL__SYSFS_ROOT=fixtures/sysfs/node-mixed RDMA_MON_GENERAL__POLL_INTERVAL=1 \
RDMA_MON_PROMETHEUS__LISTEN_ADDRESS=127.0.0.1 RDMA_MON_PROMETHEUS__PORT=$APORT \
RDMA_MON_PROMETHEUS__HEALTH_LISTEN=127.0.0.1:$HPORT \
RDMA_MON_GENERAL__SNAPSHOT_DIR="$OUT/snapshots" "$AGENT" --web.config.file "$WEB/web.yml" 2> "$OUT/agent.log" &
agent=$!
cat > "$OUT/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: rdma-monitor
    scheme: https
    tls_config:
      ca_file: $SCRAPE/ca.crt
      cert_file: $SCRAPE/client.crt
      key_file: $SCRAPE/client.key
      server_name: rdma-monitor
    basic_auth:
      username: prometheus
      password_file: $SCRAPE/password
    static_configs:
      - targets: ['127.0.0.1:$APORT']
YML
prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/tsdb" \
  --web.listen-address=127.0.0.1:$PPORT > "$OUT/prometheus.log" 2>&1 &
prom=$!
trap 'kill $agent $prom 2>/dev/null || true' EXIT
scrape() {
  curl -sf --cacert "$SCRAPE/ca.crt" --cert "$SCRAPE/client.crt" --key "$SCRAPE/client.key" \
    --connect-to "rdma-monitor:$APORT:127.0.0.1:$APORT" -u "prometheus:$(cat "$SCRAPE/password")" "$@"
}
for _ in $(seq 1 50); do scrape "https://rdma-monitor:$APORT/metrics" -o "$OUT/scrape.txt" && break; sleep 0.2; done
[ -s "$OUT/scrape.txt" ] || { echo "no scrape over HTTPS"; tail -5 "$OUT/agent.log"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SCRAPE/ca.crt" --cert "$SCRAPE/client.crt" --key "$SCRAPE/client.key" \
  --connect-to "rdma-monitor:$APORT:127.0.0.1:$APORT" -u prometheus:wrong "https://rdma-monitor:$APORT/metrics")
[ "$code" = 401 ] || { echo "a wrong password got $code, not 401"; exit 1; }
echo "HTTPS: the scrape with the Secret's certificate and password answers; a wrong password gets 401"
# What the kubelet's httpGet probe does: plain HTTP to the loopback listener.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/healthz")
[ "$code" = 200 ] || { echo "the probe's GET http://127.0.0.1:$HPORT/healthz got $code, not 200"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/metrics")
[ "$code" = 404 ] || { echo "the health listener served /metrics ($code)"; exit 1; }
echo "probe: plain GET /healthz on the loopback health listener answers 200, /metrics there 404"

echo "== 5. dashboard"
# The netdev families are not checked here: the fixture tree has none
# (ethtool reads live interfaces). collectors::dashboard_tests checks them
# against a scrape of every collector on netdevs with the drivers' own
# ethtool names (fixtures/ethtool/); it runs in `cargo test --all-targets`,
# the unit-test part of `make test`, before this script.
python3 - "$OUT/scrape.txt" deploy/grafana/rdma-monitor.json <<'PY'
import json, re, sys
scrape = {l.split("{")[0].split(" ")[0] for l in open(sys.argv[1]) if l and not l.startswith("#")}
dash = json.load(open(sys.argv[2]))
used = set()
for p in dash["panels"]:
    for t in p["targets"]:
        used |= set(re.findall(r"\b(rdma_[a-z0-9_]+)", t["expr"]))
for v in dash["templating"]["list"]:
    used |= set(re.findall(r"\b(rdma_[a-z0-9_]+)", v.get("query", "")))
# Netdev families: checked against a scrape with netdevs by
# collectors::dashboard_tests (in `cargo test --all-targets`), which fails on any the dashboard uses and no
# collector exports.
netdev_only = {m for m in used - scrape if m.startswith(("rdma_netdev_", "rdma_pfc_"))}
# The MAD families (no umad in the fixture tree): the xmit wait collector must
# declare them.
mad = open("src/collectors/xmit_wait.rs").read()
netdev_only |= {m for m in used - scrape if f'"{m}"' in mad}
missing = sorted(used - scrape - netdev_only)
assert not missing, f"dashboard queries metrics the agent does not export: {missing}"
print(f"dashboard: {len(dash['panels'])} panels, {len(used)} metrics: {len(used) - len(netdev_only)} in a real scrape, "
      f"{len(netdev_only)} netdev families (scraped with netdevs by collectors::dashboard_tests) and MAD families from the collector (no umad in the fixture tree)")
PY

echo "== 6. a real Prometheus"
q() { curl -sf --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1"; }
ok=0
for _ in $(seq 1 60); do
  sleep 0.5
  r=$(q 'rate(rdma_monitor_cycles_total[10s])' || true)
  if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) > 0 else 1)' "$r" 2>/dev/null; then ok=1; break; fi
done
[ $ok = 1 ] || { echo "rate() never answered: $r"; tail -5 "$OUT/prometheus.log"; exit 1; }
python3 - "$(q 'up{job="rdma-monitor"}')" "$(q 'rdma_port_transmit_bytes_total')" "$r" "$(q 'ALERTS{alertname="RdmaCounterSaturated"}')" <<'PY'
import json, sys
up, series, rate, alerts = (json.loads(a)["data"]["result"] for a in sys.argv[1:])
assert up and up[0]["value"][1] == "1", up
# 5 ports with PMA counters, efa_0 whose volume comes from its driver counters,
# and irdma0 whose volume is the sum of its ip4 and ip6 octets.
assert len(series) == 7, f"transmit bytes series: {len(series)}"
assert "irdma0" in {s["metric"]["device"] for s in series}, series
assert float(rate[0]["value"][1]) > 0, rate
assert {a["metric"]["device"] for a in alerts} == {"hfi1_0", "mlx4_0"}, alerts
print(f"prometheus: target up, {len(series)} transmit-bytes series, rate(rdma_monitor_cycles_total) = {float(rate[0]['value'][1]):.2f}/s, "
      f"RdmaCounterSaturated firing for {sorted(a['metric']['device'] for a in alerts)}")
PY
echo "deploy-test: all paths exercised"
