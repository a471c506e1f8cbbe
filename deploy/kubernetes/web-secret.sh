#!/usr/bin/env bash
# Makes the two Secrets the TLS + basic-auth setup needs, printed as YAML:
#   rdma-monitor-web    web.yml, tls.crt, tls.key, client-ca.crt: mounted by the
#                       DaemonSet at /etc/rdma-monitor/web (--web.config.file)
#   rdma-monitor-scrape ca.crt, client.crt, client.key, username, password:
#                       what the PodMonitor's tlsConfig and basicAuth refer to
#
#   deploy/kubernetes/web-secret.sh > web-secrets.yaml   # keep it out of git
#   kubectl apply -f web-secrets.yaml
#
# A fresh CA signs a server certificate (name "rdma-monitor": with host
# networking every node answers on its own IP, so Prometheus checks the name
# through tlsConfig.serverName instead) and a client certificate for
# Prometheus. The agent requires and verifies that client certificate, and a
# password for user "prometheus" whose bcrypt hash goes into web.yml.
# Bring your own PKI: set CA_CRT and CA_KEY to a CA certificate and key.
# Needs openssl, and rdma-monitor (RDMA_MONITOR=path, default from PATH) for
# the bcrypt hash: `rdma-monitor hash-password` reads the password on stdin.
set -euo pipefail
NAMESPACE=${NAMESPACE:-monitoring}
DAYS=${DAYS:-825}
RDMA_MONITOR=${RDMA_MONITOR:-rdma-monitor}
command -v openssl >/dev/null || { echo "web-secret.sh: openssl is missing" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
ossl() { openssl "$@" 2>/dev/null; }

if [ -n "${CA_CRT:-}" ]; then
  cp "$CA_CRT" ca.crt; cp "$CA_KEY" ca.key
else
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
    -subj "/CN=rdma-monitor CA" -keyout ca.key -out ca.crt
fi
leaf() { # name, extendedKeyUsage
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$1" "$2" > "$1.ext"
  ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" -extfile "$1.ext" -out "$1.crt"
}
leaf rdma-monitor serverAuth
leaf prometheus clientAuth

password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
hash=$(printf '%s\n' "$password" | "$RDMA_MONITOR" hash-password)

# Paths are relative to web.yml: the Secret's files sit beside it.
cat > web.yml <<YML
# exporter-toolkit web configuration (also node_exporter's --web.config.file)
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  client_ca_file: client-ca.crt
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS12
basic_auth_users:
  prometheus: '$hash'
http_server_config:
  headers:
    Strict-Transport-Security: max-age=31536000
YML

indent() { sed 's/^/    /' "$1"; }
cat <<YML
apiVersion: v1
kind: Secret
metadata:
  name: rdma-monitor-web
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/name: rdma-monitor
type: Opaque
stringData:
  web.yml: |
$(indent web.yml)
  tls.crt: |
$(indent rdma-monitor.crt)
  tls.key: |
$(indent rdma-monitor.key)
  client-ca.crt: |
$(indent ca.crt)
---
apiVersion: v1
kind: Secret
metadata:
  name: rdma-monitor-scrape
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/name: rdma-monitor
type: Opaque
stringData:
  ca.crt: |
$(indent ca.crt)
  client.crt: |
$(indent prometheus.crt)
  client.key: |
$(indent prometheus.key)
  username: prometheus
  password: '$password'
YML
