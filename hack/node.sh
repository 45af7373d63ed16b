#!/usr/bin/env bash
# What the real node needs on the host besides the Kubernetes binaries (hack/build-k8s.sh): Debian's
# containerd, runc, CNI plugins and firewall tools, and the pause image (no registry is reachable, so it is
# compiled from the pause.c that ships in the k8s.io/kubernetes module and saved as an OCI archive in
# $SLIPWAY_CACHE/images). Needs root; without root it says what is missing and exits 0, since the e2e tier
# then reports itself unavailable rather than failing to install.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
PAUSE_VERSION="${PAUSE_VERSION:-3.10.1}"
CACHE_ROOT="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
ARCHIVE="$CACHE_ROOT/images/pause-$PAUSE_VERSION.oci.tar"
PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack buildah podman gcc libc6-dev)

log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "not root: cannot install ${missing[*]}; the real-node tier will say it is unavailable"
    exit 0
  fi
  log "installing ${missing[*]} (Debian packages)"
  [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

if [ ! -f "$ARCHIVE" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  src="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  log "compiling pause $PAUSE_VERSION from $src/build/pause/linux/pause.c"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o pause "$src/build/pause/linux/pause.c"
  strip pause
  image="localhost/pause:$PAUSE_VERSION"
  container="$(buildah from scratch)"
  buildah copy --quiet "$container" pause /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$container"
  buildah commit --quiet "$container" "$image" >/dev/null
  buildah rm "$container" >/dev/null
  mkdir -p "$(dirname "$ARCHIVE")"
  podman save --quiet --format oci-archive -o "$ARCHIVE.tmp" "$image"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  log "saved $ARCHIVE"
fi
echo "$ARCHIVE"
