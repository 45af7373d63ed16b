#!/usr/bin/env bash
# Puts the CRDs of a project Slipway creates objects for in $SLIPWAY_CACHE/<name>-v<version>/, from that
# project's Go module (the Go module proxy is reachable where GitHub is not), and prints the directory.
#   gateway-api          HTTPRoute et al. (sigs.k8s.io/gateway-api), for traffic-shifting tests
#   prometheus-operator  ServiceMonitor, PrometheusRule (github.com/prometheus-operator/prometheus-operator)
# Usage: hack/third-party-crds.sh gateway-api|prometheus-operator
set -euo pipefail
case "${1:-}" in
  gateway-api)
    version="${GATEWAY_API_VERSION:-1.3.0}" module="sigs.k8s.io/gateway-api" subdir="config/crd/standard" ;;
  prometheus-operator)
    version="${PROMETHEUS_OPERATOR_VERSION:-0.85.0}"
    module="github.com/prometheus-operator/prometheus-operator" subdir="example/prometheus-operator-crd" ;;
  *) echo "usage: $0 gateway-api|prometheus-operator" >&2; exit 2 ;;
esac
DEST="${SLIPWAY_CACHE:-$HOME/.cache/slipway}/$1-v${version}"
if [ ! -f "$DEST/.complete" ]; then
  command -v go >/dev/null 2>&1 || { echo "third-party-crds: Go is needed to fetch the $1 CRDs" >&2; exit 1; }
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "${module}@v${version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -d "$dir/$subdir" ] || { echo "third-party-crds: no CRDs in ${module}@v${version}/$subdir" >&2; exit 1; }
  mkdir -p "$DEST"
  cp "$dir/$subdir"/*.yaml "$DEST/"
  chmod 644 "$DEST"/*.yaml
  touch "$DEST/.complete"
fi
echo "$DEST"
