#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's package (no root needed: the .deb is downloaded and
# unpacked, not installed) into $SLIPWAY_CACHE/prometheus-<version>, once per version. The monitoring tests
# scrape the operator with it and check the alert rules with promtool. Prints `name=path` lines.
set -euo pipefail

CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
PROMETHEUS_DEB_VERSION="${PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}"
dir="$CACHE/prometheus-${PROMETHEUS_DEB_VERSION%%+*}"

if [ ! -x "$dir/usr/bin/prometheus" ] || [ ! -x "$dir/usr/bin/promtool" ]; then
  command -v apt-get >/dev/null || { echo "prometheus: apt-get not found (Prometheus comes from Debian's package)" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "prometheus: downloading Debian's prometheus $PROMETHEUS_DEB_VERSION" >&2
  if ! (cd "$work" && apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" >&2); then
    # A fresh machine may have no package lists yet; reading them needs root.
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2
      (cd "$work" && apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" >&2)
    else
      echo "prometheus: apt-get download failed; run 'sudo apt-get update' once and retry" >&2
      exit 1
    fi
  fi
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  dpkg-deb -x "$work"/prometheus_*.deb "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi

echo "prometheus=$dir/usr/bin/prometheus"
echo "promtool=$dir/usr/bin/promtool"
