#!/usr/bin/env bash
# Builds the real Kubernetes used by tests and `make demo` from the Go module proxy: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl and kwok (the control plane and its fake node), and
# kubelet, kube-proxy and CoreDNS (the real node). Output goes to $SLIPWAY_CACHE/k8s-<versions>/bin; each
# binary already there is reused.
# Prints that directory on its last line of stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.7.0}"
COREDNS_VERSION="${COREDNS_VERSION:-1.12.4}"
CACHE_ROOT="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
DEST="$CACHE_ROOT/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}-kwok-v${KWOK_VERSION}"
BIN="$DEST/bin"
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
BINARIES=(etcd kwok coredns "${KUBE_COMMANDS[@]}")

log() { printf '[build-k8s %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build-k8s: %s\n' "$*" >&2; exit 1; }

missing=()
for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is not installed, so the Kubernetes test binaries cannot be built. Install Go >= 1.24, or set KUBEBUILDER_ASSETS to a directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok."

mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

probe_proxy() {
  go list -m -json "$1@$2" >/dev/null 2>"$work/probe.err" || die "cannot fetch $1@$2 from the Go module proxy ($(tail -n1 "$work/probe.err")). Provide the binaries through KUBEBUILDER_ASSETS instead."
}

build_kubernetes() {
  local dir="$work/kubernetes" minor="${K8S_VERSION#*.}" ldflags
  local needed=0
  for cmd in "${KUBE_COMMANDS[@]}"; do [ -x "$BIN/$cmd" ] || needed=1; done
  [ "$needed" = 1 ] || return 0
  mkdir -p "$dir" && cd "$dir"
  probe_proxy k8s.io/kubernetes "v$K8S_VERSION"
  log "downloading k8s.io/kubernetes v$K8S_VERSION (one large module, a few minutes cold)"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes v$K8S_VERSION"
  # k8s.io/kubernetes points its staging modules at ./staging; a wrapper module pins each to v0.<minor>.<patch>.
  {
    echo "module slipway.dev/k8s-build"
    echo
    sed -n 's/^go \(.*\)/go \1/p' "$gomod" | head -n1
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    grep -E '=> \./staging/src/' "$gomod" | sed -E 's/^[[:space:]]*(replace[[:space:]]+)?//' |
      awk -v v="v0.$minor" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  log "resolving dependencies ($(grep -c '^replace' go.mod) staging modules pinned to v0.$minor)"
  go mod download >/dev/null 2>&1 || true
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
  done
  for cmd in "${KUBE_COMMANDS[@]}"; do
    [ -x "$BIN/$cmd" ] && continue
    log "compiling $cmd (kube-apiserver is the long one: 10-20 min cold on 2 cores)"
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
    log "built $cmd"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  local dir="$work/etcd"
  mkdir -p "$dir" && cd "$dir"
  probe_proxy go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
  log "compiling etcd v$ETCD_VERSION"
  printf 'module slipway.dev/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >go.mod
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "built etcd"
}

build_kwok() {
  [ -x "$BIN/kwok" ] && return
  probe_proxy sigs.k8s.io/kwok "v$KWOK_VERSION"
  log "compiling kwok v$KWOK_VERSION"
  GOBIN="$work/kwok-bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mv "$work/kwok-bin/kwok" "$BIN/kwok"
  log "built kwok"
}

# CoreDNS with only the plugins a test cluster needs (its documented compile-time plugin selection), so
# pods resolve <service>.<namespace>.svc on the real node as on any cluster.
build_coredns() {
  [ -x "$BIN/coredns" ] && return
  local dir="$work/coredns"
  mkdir -p "$dir" && cd "$dir"
  probe_proxy github.com/coredns/coredns "v$COREDNS_VERSION"
  log "compiling coredns v$COREDNS_VERSION"
  printf 'module slipway.dev/coredns-build\n\ngo 1.24\n\nrequire github.com/coredns/coredns v%s\n' "$COREDNS_VERSION" >go.mod
  cat >main.go <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "errors", "health", "ready", "cache", "kubernetes"}
}

func main() { coremain.Run() }
GO
  go mod tidy >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$BIN/coredns.tmp" .
  mv "$BIN/coredns.tmp" "$BIN/coredns"
  log "built coredns"
}

log "building into $BIN (missing: ${missing[*]})"
build_etcd
build_kwok
build_kubernetes
build_coredns
log "done in $(( $(date +%s) - start ))s"
echo "$BIN"
