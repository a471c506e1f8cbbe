#!/usr/bin/env python3
"""Validates deploy/kubernetes: core resources against the Kubernetes OpenAPI
schemas (kubernetes-validate, strict), the prometheus-operator PodMonitor and
ServiceMonitor against a schema of the fields they use, written from the
operator's API reference (monitoring.coreos.com/v1), strict as well."""
import glob
import subprocess
import sys

import jsonschema
import yaml

core, monitors = [], []
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            (monitors if doc["apiVersion"].startswith("monitoring.coreos.com/") else core).append((path, doc))

paths = sorted({p for p, _ in core})
r = subprocess.run(["kubernetes-validate", "--strict", "-k", "1.30.0", *paths], capture_output=True, text=True)
print(r.stdout.strip())
if r.returncode != 0:
    print(r.stderr)
    sys.exit(1)

strict = lambda props, required=(): {"type": "object", "additionalProperties": False, "properties": props, "required": list(required)}
relabel = strict({"sourceLabels": {"type": "array", "items": {"type": "string"}}, "targetLabel": {"type": "string"},
                  "regex": {"type": "string"}, "replacement": {"type": "string"}, "action": {"type": "string"},
                  "separator": {"type": "string"}})
# SecretKeySelector, SafeTLSConfig and BasicAuth as the operator's API reference defines them.
secret_key = strict({"name": {"type": "string"}, "key": {"type": "string"}, "optional": {"type": "boolean"}}, ["name", "key"])
secret_or_cm = strict({"secret": secret_key, "configMap": secret_key})
tls_config = strict({"ca": secret_or_cm, "cert": secret_or_cm, "keySecret": secret_key, "serverName": {"type": "string"},
                     "insecureSkipVerify": {"type": "boolean"}})
basic_auth = strict({"username": secret_key, "password": secret_key}, ["username", "password"])
endpoint = strict({"port": {"type": "string"}, "path": {"type": "string"}, "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                   "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}, "scheme": {"enum": ["http", "https"]},
                   "tlsConfig": tls_config, "basicAuth": basic_auth,
                   "relabelings": {"type": "array", "items": relabel}, "honorLabels": {"type": "boolean"}}, ["port"])
selector = strict({"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}})
metadata = strict({"name": {"type": "string"}, "namespace": {"type": "string"},
                   "labels": {"type": "object", "additionalProperties": {"type": "string"}}}, ["name"])
schemas = {
    "PodMonitor": strict({"apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"}, "metadata": metadata,
                          "spec": strict({"selector": selector, "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": endpoint},
                                          "namespaceSelector": {"type": "object"}}, ["selector", "podMetricsEndpoints"])},
                         ["apiVersion", "kind", "metadata", "spec"]),
    "ServiceMonitor": strict({"apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"}, "metadata": metadata,
                              "spec": strict({"selector": selector, "endpoints": {"type": "array", "minItems": 1, "items": endpoint},
                                              "namespaceSelector": {"type": "object"}}, ["selector", "endpoints"])},
                             ["apiVersion", "kind", "metadata", "spec"]),
}
for path, doc in monitors:
    jsonschema.validate(doc, schemas[doc["kind"]])
    print(f"INFO {path} passed for {doc['kind'].lower()}/{doc['metadata']['name']} (monitoring.coreos.com/v1 fields)")

# The pieces have to fit together.
ds = next(d for _, d in core if d["kind"] == "DaemonSet")
svc = next(d for _, d in core if d["kind"] == "Service")
pod = ds["spec"]["template"]
labels = pod["metadata"]["labels"]
assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "the Service does not select the pods"
ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
for _, m in monitors:
    assert all(labels.get(k) == v for k, v in m["spec"]["selector"]["matchLabels"].items()), f"{m['kind']} selects nothing"
    for ep in m["spec"].get("podMetricsEndpoints", m["spec"].get("endpoints", [])):
        assert ep["port"] in ports | {p["name"] for p in svc["spec"]["ports"]}, f"{m['kind']} port {ep['port']}"
c = pod["spec"]["containers"][0]
# The probes ask the loopback health listener, plain HTTP (the scrape port
# wants a client certificate and a password the kubelet does not have).
env = {e["name"]: e.get("value") for e in c["env"]}
health = env["RDMA_MON_PROMETHEUS__HEALTH_LISTEN"]
hhost, hport = health.rsplit(":", 1)
for probe in ("readinessProbe", "livenessProbe"):
    g = c[probe]["httpGet"]
    assert (g["host"], str(g["port"]), g["path"]) == (hhost, hport, "/healthz"), f"{probe} {g} does not ask {health}/healthz"
    assert g.get("scheme", "HTTP") == "HTTP"
assert hhost == "127.0.0.1", f"health_listen {health} is not loopback"
assert pod["spec"]["hostNetwork"] is True
assert any(v["hostPath"]["path"] == "/sys" for v in pod["spec"]["volumes"] if "hostPath" in v)
assert any(m["mountPath"] == "/sys" and m.get("readOnly") for m in c["volumeMounts"])
print("INFO the DaemonSet, Service and monitors fit together (labels, ports, probes, /sys read-only)")

# TLS + basic auth: the Secrets web-secret.sh makes are the ones the DaemonSet
# mounts and the monitors refer to, with the keys they name; and they are
# valid Secrets.
import os, tempfile
made = subprocess.run(["deploy/kubernetes/web-secret.sh"], capture_output=True, text=True, check=True).stdout
secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(made)}
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write(made)
r = subprocess.run(["kubernetes-validate", "--strict", "-k", "1.30.0", f.name], capture_output=True, text=True)
os.unlink(f.name)
assert r.returncode == 0, r.stdout + r.stderr
web_file = c["args"][c["args"].index("--web.config.file") + 1]
mount = next(m for m in c["volumeMounts"] if web_file.startswith(m["mountPath"] + "/"))
vol = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
web = secrets[vol["secret"]["secretName"]]["stringData"]
assert os.path.basename(web_file) in web, f"the Secret has no {web_file}"
web_yml = yaml.safe_load(web[os.path.basename(web_file)])
for k in ("cert_file", "key_file", "client_ca_file"):
    assert web_yml["tls_server_config"][k] in web, f"web.yml's {k} is not in the Secret"
assert web_yml["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
for _, m in monitors:
    for ep in m["spec"].get("podMetricsEndpoints", m["spec"].get("endpoints", [])):
        assert ep["scheme"] == "https", f"{m['kind']} scrapes without TLS"
        t, b = ep["tlsConfig"], ep["basicAuth"]
        refs = [t["ca"]["secret"], t["cert"]["secret"], t["keySecret"], b["username"], b["password"]]
        for ref in refs:
            assert ref["key"] in secrets[ref["name"]]["stringData"], f"{m['kind']} refers to {ref}, which web-secret.sh does not make"
        assert t["serverName"] == "rdma-monitor"
print(f"INFO web-secret.sh makes {sorted(secrets)}: valid Secrets with every key the DaemonSet and monitors use")

# The image the DaemonSet runs is the one README's build command tags, at the
# crate's version.
import re
version = re.search(r'^version = "([^"]+)"', open("Cargo.toml").read(), re.M).group(1)
tag = f"rdma-monitor:{version}"
assert c["image"].endswith(tag), f"DaemonSet image {c['image']} is not {tag}"
for path in ("README.md", "Dockerfile"):
    assert f"-t {tag} " in open(path).read(), f"{path} does not build the image as {tag}"
print(f"INFO the DaemonSet runs {tag}, the tag README and Dockerfile build")
