#!/usr/bin/env bash
# Installs the object-storage servers the storage tests start on loopback, into $SLIPWAY_CACHE keyed by version:
#   fake-gcs-server (GCS)  built from the Go module proxy with `go install`
#   Azurite (Azure Blob)   from the npm registry, `npm install --prefix`
# (S3 is moto's server mode, installed into the venv by the dev extra.)
# Each is rebuilt only when missing. Prints `name=path` lines for the binaries.
set -euo pipefail

CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
FAKE_GCS_VERSION="${FAKE_GCS_VERSION:-v1.56.1}"
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"

fake_gcs_dir="$CACHE/fake-gcs-server-$FAKE_GCS_VERSION"
fake_gcs_bin="$fake_gcs_dir/bin/fake-gcs-server"
if [ ! -x "$fake_gcs_bin" ]; then
  command -v go >/dev/null || { echo "storage-servers: go not found (needed to build fake-gcs-server)" >&2; exit 1; }
  mkdir -p "$fake_gcs_dir.tmp/bin"
  echo "storage-servers: building fake-gcs-server $FAKE_GCS_VERSION (go install, a few minutes)" >&2
  GOBIN="$fake_gcs_dir.tmp/bin" CGO_ENABLED=0 GOFLAGS=-trimpath \
    go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  rm -rf "$fake_gcs_dir" && mv "$fake_gcs_dir.tmp" "$fake_gcs_dir"
fi

azurite_dir="$CACHE/azurite-$AZURITE_VERSION"
azurite_bin="$azurite_dir/node_modules/.bin/azurite-blob"
if [ ! -x "$azurite_bin" ]; then
  command -v npm >/dev/null || { echo "storage-servers: npm not found (needed to install Azurite)" >&2; exit 1; }
  rm -rf "$azurite_dir.tmp" && mkdir -p "$azurite_dir.tmp"
  echo "storage-servers: installing azurite $AZURITE_VERSION from npm" >&2
  npm install --silent --no-audit --no-fund --prefix "$azurite_dir.tmp" "azurite@$AZURITE_VERSION" >&2
  rm -rf "$azurite_dir" && mv "$azurite_dir.tmp" "$azurite_dir"
fi

echo "fake-gcs-server=$fake_gcs_bin"
echo "azurite-blob=$azurite_bin"
