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
endpoint = strict({"port": {"type": "string"}, "path": {"type": "string"}, "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                   "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}, "scheme": {"enum": ["http", "https"]},
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
assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
assert pod["spec"]["hostNetwork"] is True
assert any(v["hostPath"]["path"] == "/sys" for v in pod["spec"]["volumes"] if "hostPath" in v)
assert any(m["mountPath"] == "/sys" and m.get("readOnly") for m in c["volumeMounts"])
print("INFO the DaemonSet, Service and monitors fit together (labels, ports, /healthz, /sys read-only)")

# The image the DaemonSet runs is the one README's build command tags, at the
# crate's version.
import re
version = re.search(r'^version = "([^"]+)"', open("Cargo.toml").read(), re.M).group(1)
tag = f"rdma-monitor:{version}"
assert c["image"].endswith(tag), f"DaemonSet image {c['image']} is not {tag}"
for path in ("README.md", "Dockerfile"):
    assert f"-t {tag} " in open(path).read(), f"{path} does not build the image as {tag}"
print(f"INFO the DaemonSet runs {tag}, the tag README and Dockerfile build")
