#!/usr/bin/env bash
# Builds Argo CD from the Go module proxy into $SLIPWAY_CACHE/argocd-v<version>/, each piece rebuilt only when
# missing, for the health-check tests and the GitOps loop (tests/gitops):
#   bin/argocd         the single binary; it acts as each component by the name it is called with, so
#                      bin/argocd-application-controller and bin/argocd-repo-server are symlinks to it
#   bin/kustomize      the kustomize release Argo CD ships (its hack/tool-versions.sh), which the repo server runs
#   bin/git-verify-wrapper.sh, bin/gpg-wrapper.sh   the scripts Argo CD's image puts on the repo server's PATH
#   crds/              Argo CD's Application and AppProject CRDs, from the same module
# and installs Debian's redis-server (pinned; the cache both components share) and git when missing.
# Prints that bin directory on its last line of stdout.
#
# Argo CD's go.mod needs a newer Go than the machine may have; the proxy serves that toolchain
# (GOTOOLCHAIN). Its `replace` lines cannot be inherited by a dependent module, so a wrapper module copies
# them, all but the local ./gitops-engine one: that module, github.com/argoproj/argo-cd/gitops-engine/v3,
# is published at the same version and comes from the proxy.
set -euo pipefail

ARGOCD_VERSION="${ARGOCD_VERSION:-3.6.1}"
ARGOCD_GOTOOLCHAIN="${ARGOCD_GOTOOLCHAIN:-go1.27.3}"
MODULE="github.com/argoproj/argo-cd/v3"
CACHE_ROOT="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
DEST="$CACHE_ROOT/argocd-v$ARGOCD_VERSION"
BIN="$DEST/bin"
CRDS="$DEST/crds"
COMPONENTS=(argocd-application-controller argocd-repo-server)
REDIS_VERSION="${REDIS_VERSION:-5:7.0.15-1~deb12u10}"

log() { printf '[build-argocd %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build-argocd: %s\n' "$*" >&2; exit 1; }

link_components() {
  for name in "${COMPONENTS[@]}"; do ln -sfn argocd "$BIN/$name"; done
}

install_debian() {  # package=version, when the command is missing
  local cmd="$1" package="$2"
  command -v "$cmd" >/dev/null 2>&1 && return
  command -v apt-get >/dev/null 2>&1 || die "$cmd not found and apt-get is not available: install ${package%%=*}"
  [ "$(id -u)" = 0 ] || die "$cmd not found: install it (as root: apt-get install ${package%%=*}), then run this again"
  log "installing $package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >/dev/null
  # Debian's package starts a system-wide service where it can; the tests start their own on loopback.
}

install_debian redis-server "redis-server=$REDIS_VERSION"
install_debian git git

if [ -x "$BIN/argocd" ] && [ -x "$BIN/kustomize" ] && [ -x "$BIN/git-verify-wrapper.sh" ] && [ -f "$CRDS/.complete" ]; then
  link_components
  log "cached: $DEST"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is not installed, so Argo CD cannot be built. Install Go >= 1.21 (it fetches $ARGOCD_GOTOOLCHAIN from the module proxy)."

mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
cd "$work"
export GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

log "fetching $MODULE@v$ARGOCD_VERSION (and the $ARGOCD_GOTOOLCHAIN toolchain) from the Go module proxy"
gomod="$(go mod download -json "$MODULE@v$ARGOCD_VERSION" 2>"$work/download.err" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')" ||
  true
[ -f "$gomod" ] || die "cannot fetch $MODULE@v$ARGOCD_VERSION from the Go module proxy: $(tail -n3 "$work/download.err")"

# Every replace of Argo CD's go.mod, single-line or inside a block, but the local ./ ones.
{
  echo "module slipway.dev/argocd-build"
  echo
  sed -n 's/^go \(.*\)/go \1/p' "$gomod" | head -n1
  echo
  echo "require $MODULE v$ARGOCD_VERSION"
  echo
  awk '
    /^replace \(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block && /=>/ { print "replace " $0; next }
    /^replace .*=>/ { print }
  ' "$gomod" | sed -E 's/^replace[[:space:]]+/replace /' | grep -v '=>[[:space:]]*\./' || true
} >go.mod
cat >tools.go <<EOF
//go:build tools

package tools

import _ "$MODULE/cmd"
EOF
log "resolving dependencies ($(grep -c '^replace' go.mod) replaces copied from Argo CD's go.mod)"
go mod tidy >"$work/tidy.log" 2>&1 || die "go mod tidy failed: $(tail -n5 "$work/tidy.log")"

pkg="$MODULE/common"
ldflags="-s -w -X $pkg.version=$ARGOCD_VERSION -X $pkg.gitTag=v$ARGOCD_VERSION -X $pkg.gitTreeState=clean"
ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ ! -x "$BIN/argocd" ]; then
  log "compiling $MODULE/cmd (about 5 min cold on 2 cores)"
  go build -trimpath -ldflags "$ldflags" -o "$BIN/argocd.tmp" "$MODULE/cmd"
  mv "$BIN/argocd.tmp" "$BIN/argocd"
  log "built $("$BIN/argocd" version --client --short 2>/dev/null | head -n1)"
fi
link_components

src="$(go list -m -f '{{.Dir}}' "$MODULE")"
# kustomize's own go.mod requires a k8s.io/kube-openapi pseudo-version the proxy refuses (403), so it is built
# through a wrapper module pinning the kube-openapi Argo CD itself builds with.
if [ ! -x "$BIN/kustomize" ]; then
  kustomize_version="$(sed -n 's/^KUSTOMIZE_VERSION=//p' "$src/hack/tool-versions.sh")"
  [ -n "$kustomize_version" ] || die "no KUSTOMIZE_VERSION in $MODULE/hack/tool-versions.sh"
  openapi="$(awk '$1 == "k8s.io/kube-openapi" {print $2; exit}' "$gomod")"
  mkdir -p "$work/kustomize" && cd "$work/kustomize"
  printf 'module slipway.dev/kustomize-build\n\ngo 1.27.0\n\nrequire sigs.k8s.io/kustomize/kustomize/v5 v%s\n\nreplace k8s.io/kube-openapi => k8s.io/kube-openapi %s\n' \
    "$kustomize_version" "$openapi" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kustomize/kustomize/v5"\n' >tools.go
  log "compiling kustomize v$kustomize_version (the one Argo CD v$ARGOCD_VERSION ships)"
  go mod tidy >"$work/kustomize-tidy.log" 2>&1 || die "go mod tidy (kustomize) failed: $(tail -n5 "$work/kustomize-tidy.log")"
  go build -trimpath -ldflags "-s -w" -o "$BIN/kustomize.tmp" sigs.k8s.io/kustomize/kustomize/v5
  mv "$BIN/kustomize.tmp" "$BIN/kustomize"
  cd "$work"
fi

# The repo server runs these as Argo CD's image installs them (its Dockerfile copies them onto the PATH).
for wrapper in gpg-wrapper.sh git-verify-wrapper.sh; do install -m 755 "$src/hack/$wrapper" "$BIN/$wrapper"; done

mkdir -p "$CRDS"
for crd in application-crd.yaml appproject-crd.yaml; do cp "$src/manifests/crds/$crd" "$CRDS/"; done
chmod 644 "$CRDS"/*.yaml
touch "$CRDS/.complete"
log "done in $(( $(date +%s) - start ))s"
echo "$BIN"
