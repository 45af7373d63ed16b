#!/usr/bin/env bash
# Builds the real Kubeflow Pipelines backend the kfp-executor tests run against, from the Go module proxy:
#   apiserver          backend/src/apiserver (CGO: it links sqlite3, so gcc is needed)
#   persistence_agent  backend/src/agent/persistence (static)
# into $SLIPWAY_CACHE/kfp-<version>/bin, rebuilt only when a binary is missing. It also copies the CRDs the
# API server needs (Argo's Workflow, KFP's ScheduledWorkflow) from the same module into .../crds, and
# installs Debian's mariadb-server (the API server's MySQL) when mariadbd is missing.
# Prints that kfp-<version> directory on its last line of stdout.
#
# The proxy serves github.com/kubeflow/pipelines only up to the 2.0.5 release commit (newer ones answer 403),
# so the version is a pseudo-version of tag 2.0.5. That module's go.mod needs two replaces to resolve:
# k8s.io/kubernetes (it requires v0.17.9, which has no usable go.mod) and an old controller-tools.
set -euo pipefail

KFP_VERSION="${KFP_VERSION:-2.0.5}"
KFP_MODULE_VERSION="${KFP_MODULE_VERSION:-v0.0.0-20231208180049-c5658f09ec38}"
MODULE="github.com/kubeflow/pipelines"
CACHE_ROOT="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
DEST="$CACHE_ROOT/kfp-$KFP_VERSION"
BIN="$DEST/bin"
CRDS="$DEST/crds"
CRD_FILES=(
  manifests/kustomize/third-party/argo/upstream/manifests/base/crds/minimal/argoproj.io_workflows.yaml
  manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml
)

log() { printf '[kfp-backend %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'kfp-backend: %s\n' "$*" >&2; exit 1; }

if ! command -v mariadbd >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "mariadbd not found and apt-get is not available: install MariaDB (or MySQL) server"
  [ "$(id -u)" = 0 ] || die "mariadbd not found: install it (as root: apt-get install mariadb-server), then run this again"
  log "installing mariadb-server (the KFP API server's database)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server >/dev/null
  # Debian's package starts a system-wide service where it can; the tests start their own on loopback.
fi

if [ -x "$BIN/apiserver" ] && [ -x "$BIN/persistence_agent" ] && [ -f "$CRDS/.complete" ]; then
  log "cached: $DEST"
  echo "$DEST"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is not installed, so the KFP API server cannot be built. Install Go >= 1.21."
command -v gcc >/dev/null 2>&1 || die "gcc is needed to build the KFP API server (it links sqlite3 through cgo): apt-get install gcc"

mkdir -p "$BIN" "$CRDS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
cd "$work"
export GOFLAGS="-mod=mod -buildvcs=false"

go list -m -json "$MODULE@$KFP_MODULE_VERSION" >/dev/null 2>"$work/probe.err" ||
  die "cannot fetch $MODULE@$KFP_MODULE_VERSION from the Go module proxy ($(tail -n1 "$work/probe.err"))"

cat >go.mod <<EOF
module slipway.dev/kfp-build

go 1.21

require $MODULE $KFP_MODULE_VERSION

replace (
	k8s.io/kubernetes => k8s.io/kubernetes v1.11.1
	sigs.k8s.io/controller-tools => sigs.k8s.io/controller-tools v0.2.9
)
EOF
cat >tools.go <<EOF
//go:build tools

package tools

import (
	_ "$MODULE/backend/src/agent/persistence"
	_ "$MODULE/backend/src/apiserver"
)
EOF
log "resolving $MODULE@$KFP_MODULE_VERSION (KFP $KFP_VERSION) and its dependencies (a few minutes cold)"
go mod tidy >"$work/tidy.log" 2>&1 || die "go mod tidy failed: $(tail -n3 "$work/tidy.log")"

if [ ! -x "$BIN/apiserver" ]; then
  log "compiling apiserver (cgo, sqlite3: the long one)"
  CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o "$BIN/apiserver.tmp" "$MODULE/backend/src/apiserver"
  mv "$BIN/apiserver.tmp" "$BIN/apiserver"
  log "built apiserver"
fi
if [ ! -x "$BIN/persistence_agent" ]; then
  log "compiling persistence_agent"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/persistence_agent.tmp" "$MODULE/backend/src/agent/persistence"
  mv "$BIN/persistence_agent.tmp" "$BIN/persistence_agent"
  log "built persistence_agent"
fi

src="$(go list -m -f '{{.Dir}}' "$MODULE")"
for f in "${CRD_FILES[@]}"; do
  [ -f "$src/$f" ] || die "no CRD at $MODULE/$f"
  cp "$src/$f" "$CRDS/"
done
chmod 644 "$CRDS"/*.yaml
touch "$CRDS/.complete"

log "done in $(( $(date +%s) - start ))s"
echo "$DEST"
