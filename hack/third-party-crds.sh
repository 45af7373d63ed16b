#!/usr/bin/env bash
# Puts the Gateway API standard CRDs (HTTPRoute et al.) in $SLIPWAY_CACHE/gateway-api-v<version>/ from the
# sigs.k8s.io/gateway-api Go module, for tests of HTTPRoute traffic shifting. Prints the directory.
set -euo pipefail
VERSION="${GATEWAY_API_VERSION:-1.3.0}"
DEST="${SLIPWAY_CACHE:-$HOME/.cache/slipway}/gateway-api-v${VERSION}"
if [ ! -f "$DEST/gateway.networking.k8s.io_httproutes.yaml" ]; then
  command -v go >/dev/null 2>&1 || { echo "gateway-api-crds: Go is needed to fetch the Gateway API CRDs" >&2; exit 1; }
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@v${VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -d "$dir/config/crd/standard" ] || { echo "gateway-api-crds: no CRDs in sigs.k8s.io/gateway-api@v${VERSION}" >&2; exit 1; }
  mkdir -p "$DEST"
  cp "$dir"/config/crd/standard/*.yaml "$DEST/"
  chmod 644 "$DEST"/*.yaml
fi
echo "$DEST"
