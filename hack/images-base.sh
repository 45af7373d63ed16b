#!/usr/bin/env bash
# Writes a root filesystem tarball that stands in for python:3.11-slim-bookworm, made from Debian's own
# packages with mmdebstrap (no container registry needed): Debian bookworm, CPython 3.11, pip, venv and the
# CA certificates. hack/images.sh imports it as the base of every image and keys its cache by a hash of this
# file, so editing the package list or a hook rebuilds the base. Needs root. Usage: images-base.sh OUT.tar
set -euo pipefail

out="${1:?usage: images-base.sh OUT.tar}"
suite=bookworm
packages=python3.11,python3-pip,python3-venv,python-is-python3,ca-certificates

# The mirrors this machine's apt already uses (deb822 or one-line sources), so nothing names a host here.
sources="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)"
main="$(awk '/^URIs:/ {print $2} /^deb / {print $2}' <<<"$sources" | grep -v security | head -1)"
security="$(awk '/^URIs:/ {print $2} /^deb / {print $2}' <<<"$sources" | grep security | head -1)"
: "${main:=http://deb.debian.org/debian}" "${security:=http://deb.debian.org/debian-security}"

mmdebstrap --variant=minbase --mode=root --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$suite" "$out" \
  "deb $main $suite main" \
  "deb $main $suite-updates main" \
  "deb $security $suite-security main" </dev/null
