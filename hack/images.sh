#!/usr/bin/env bash
# Builds Slipway's three OCI images without Docker or a registry, smoke-tests each, and saves each as an
# OCI archive under $SLIPWAY_CACHE/images. Prints one `name archive-path` line per image on stdout (progress
# goes to stderr). Usage: hack/images.sh [operator|pipelines|model-server ...]  (default: all three)
#
# - Tools: podman, buildah and runc from Debian (installed with apt-get when missing; needs root). runc,
#   because crun refuses hybrid cgroup layouts; ulimits no higher than this machine allows (podman's default
#   nofile of 1048576 fails with EPERM where the hard limit is lower).
# - Base: a python:3.11-slim-bookworm look-alike from Debian's packages (hack/images-base.sh), built once and
#   cached, keyed by a hash of that script. The Dockerfiles default BASE to the official Python image, so
#   with Docker they build as usual; here BASE is this local image.
# - Each image is keyed by a hash of its Dockerfile, the files it copies and the base: unchanged inputs reuse
#   the saved archive (no build, no save). The host CA bundle is mounted for pip during the build only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
DIR="$CACHE/images"
TAG="${SLIPWAY_IMAGE_TAG:-dev}"
PODMAN_DEB_VERSION="${PODMAN_DEB_VERSION:-4.3.1+ds1-8+deb12u1+b3}"
BUILDAH_DEB_VERSION="${BUILDAH_DEB_VERSION:-1.28.2+ds1-3+deb12u1+b3}"
RUNC_DEB_VERSION="${RUNC_DEB_VERSION:-1.1.5+ds1-1+deb12u1}"
MMDEBSTRAP_DEB_VERSION="${MMDEBSTRAP_DEB_VERSION:-1.3.5-7}"
CA_BUNDLE="${SLIPWAY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

declare -A IMAGE=(
  [operator]="localhost/slipway:$TAG"
  [pipelines]="localhost/slipway-pipelines:$TAG"
  [model-server]="localhost/slipway-model-server:$TAG"
)
# What each Dockerfile copies from the repository (its cache key covers exactly these).
declare -A INPUTS=(
  [operator]="pyproject.toml README.md operator pipelines"
  [pipelines]="pipelines/requirements.txt pyproject.toml README.md operator pipelines"
  [model-server]="pyproject.toml README.md operator"
)

log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }
CLEANUP=()
trap 'for step in "${CLEANUP[@]}"; do eval "$step"; done' EXIT

ensure_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=("podman=$PODMAN_DEB_VERSION")
  command -v buildah >/dev/null || missing+=("buildah=$BUILDAH_DEB_VERSION")
  command -v runc >/dev/null || missing+=("runc=$RUNC_DEB_VERSION")
  command -v mmdebstrap >/dev/null || missing+=("mmdebstrap=$MMDEBSTRAP_DEB_VERSION")
  command -v curl >/dev/null || missing+=(curl)
  [ "${#missing[@]}" -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "needs ${missing[*]} (run as root, or install them with apt-get)"
  command -v apt-get >/dev/null || die "needs ${missing[*]}: install podman, buildah, runc and mmdebstrap"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
  }
}

engine_config() {
  local nofile
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nofile" -gt 1048576 ] && nofile=1048576
  cat >"$DIR/containers.conf.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
  mv "$DIR/containers.conf.tmp" "$DIR/containers.conf"
  export CONTAINERS_CONF="$DIR/containers.conf"
}

# A content hash of files and directories (paths and bytes), ignoring caches.
hash_inputs() {
  (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name '*.py[cod]' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

base_image() {
  local key tar image
  key="$(sha256sum "$ROOT/hack/images-base.sh" | cut -c1-12)"
  tar="$DIR/base-$key.tar"
  image="localhost/slipway-base:$key"
  if ! podman image exists "$image"; then
    if [ ! -f "$tar" ]; then
      [ "$(id -u)" = 0 ] || die "building the base root filesystem needs root (mmdebstrap --mode=root)"
      log "base: building a Debian bookworm + Python 3.11 root filesystem with mmdebstrap (once)"
      rm -rf "$DIR/base-$key.tmp.tar"
      nice -n 19 bash "$ROOT/hack/images-base.sh" "$DIR/base-$key.tmp.tar" >&2
      mv "$DIR/base-$key.tmp.tar" "$tar"
    fi
    log "base: importing $tar as $image"
    podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tar" "$image" >/dev/null
  fi
  echo "$image"
}

build() {
  local name="$1" base="$2"
  nice -n 19 podman build --pull=never --layers --build-arg "BASE=$base" \
    -v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
    -f "$ROOT/images/$name/Dockerfile" -t "${IMAGE[$name]}" "$ROOT" >&2
}

run() { podman run --rm --network=host "$@"; }

# Containers run as the operator's pods run them: read-only root, a writable /tmp, the pods' uid.
smoke_operator() {
  run --read-only "${IMAGE[operator]}" --help >/dev/null
  run --read-only --user 1000 --tmpfs /tmp "${IMAGE[operator]}" pull --help >/dev/null
}

smoke_pipelines() {
  run --entrypoint python "${IMAGE[pipelines]}" -c '
import tensorflow, tensorflow_transform, tensorflow_model_analysis, kfp, apache_beam
import slipway.storage, slipway.datastats, slipway.training.local_run
print("tensorflow", tensorflow.__version__, "tft", tensorflow_transform.__version__,
      "tfma", tensorflow_model_analysis.__version__, "kfp", kfp.__version__)
' >&2
  # A compiled two-step pipeline run with kfp.local in the image, the way the job executor runs one.
  run --entrypoint python -v "$ROOT/hack/images-smoke-pipeline.py:/tmp/smoke.py:ro" \
    "${IMAGE[pipelines]}" /tmp/smoke.py >&2
}

smoke_model_server() {
  local work port
  work="$(mktemp -d)"
  CLEANUP+=("podman rm -f slipway-model-server-smoke-$$ >/dev/null 2>&1 || true; rm -rf '$work'")
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # A tiny SavedModel written by the image's own TensorFlow: y = 2x + 1 as version 1 of `half`.
  run --entrypoint python -v "$work:/work" --user 0 "${IMAGE[model-server]}" -c '
import tensorflow as tf
class Half(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": 2.0 * x + 1.0}
m = Half()
tf.saved_model.save(m, "/work/half/1", signatures={"serving_default": m.serve})
' >/dev/null 2>"$work/save.log" || { tail -20 "$work/save.log" >&2; die "model-server: writing a SavedModel failed"; }
  chmod -R a+rX "$work"
  printf 'model_config_list {\n  config {\n    name: "half"\n    base_path: "/models/half"\n    model_platform: "tensorflow"\n  }\n}\n' >"$work/models.config"
  printf 'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n' >"$work/monitoring.config"
  podman run -d --name slipway-model-server-smoke-$$ --network=host -v "$work:/models:ro" \
    --read-only --tmpfs /tmp --user 1000 \
    --entrypoint slipway-model-server "${IMAGE[model-server]}" \
    --port=0 --rest_api_port="$port" --model_config_file=/models/models.config \
    --monitoring_config_file=/models/monitoring.config >/dev/null
  local status="" i
  for i in $(seq 120); do
    status="$(curl -fsS "http://127.0.0.1:$port/v1/models/half/versions/1" 2>/dev/null || true)"
    [[ "$status" == *AVAILABLE* ]] && break
    sleep 1
  done
  [[ "$status" == *AVAILABLE* ]] || { podman logs slipway-model-server-smoke-$$ >&2; die "model-server: v1 never AVAILABLE"; }
  local answer
  answer="$(curl -fsS -d '{"instances": [1.0, 2.0]}' "http://127.0.0.1:$port/v1/models/half:predict")"
  [[ "$(tr -d ' \n' <<<"$answer")" == '{"predictions":[3.0,5.0]}' ]] || die "model-server: predict answered $answer"
  # Read the whole page first: `curl | grep -q` fails under pipefail when grep stops reading early.
  local metrics
  metrics="$(curl -fsS "http://127.0.0.1:$port/monitoring/prometheus/metrics")"
  grep -q '^:tensorflow:serving:request_count{' <<<"$metrics" \
    || die "model-server: no :tensorflow:serving:request_count in the metrics"
  log "model-server: v1 AVAILABLE, predict [1, 2] -> $(tr -d " \n" <<<"$answer")"
}

main() {
  local names=("$@")
  [ "${#names[@]}" -gt 0 ] || names=(operator pipelines model-server)
  for name in "${names[@]}"; do
    [ -n "${IMAGE[$name]:-}" ] || die "unknown image $name (operator, pipelines, model-server)"
  done
  mkdir -p "$DIR"
  # One run at a time per cache (worktrees share the image names, the archives and podman's storage).
  exec 9>"$DIR/.lock"
  flock -n 9 || { log "waiting for another hack/images.sh to finish"; flock 9; }
  ensure_tools
  engine_config
  local base base_key
  base="$(base_image)"
  base_key="${base##*:}"
  for name in "${names[@]}"; do
    local key archive started
    key="$(cd "$ROOT" && { echo "$base_key"; hash_inputs "images/$name" ${INPUTS[$name]}; } | sha256sum | cut -c1-16)"
    archive="$DIR/$name-$key.oci.tar"
    if [ -f "$archive" ] && [ -f "$archive.id" ]; then
      if [ "$(podman image inspect --format '{{.Id}}' "${IMAGE[$name]}" 2>/dev/null)" != "$(cat "$archive.id")" ]; then
        log "$name: loading ${IMAGE[$name]} from $archive"
        podman load -q -i "$archive" >/dev/null
      fi
      log "$name: unchanged (${IMAGE[$name]}, $archive)"
    else
      started=$SECONDS
      local previous
      previous="$(podman image inspect --format '{{.Id}}' "${IMAGE[$name]}" 2>/dev/null || true)"
      log "$name: building ${IMAGE[$name]}"
      build "$name" "$base"
      log "$name: built in $((SECONDS - started)) s; smoke test"
      "smoke_${name//-/_}"
      podman save --format oci-archive -o "$archive.tmp" "${IMAGE[$name]}"
      mv "$archive.tmp" "$archive"
      podman image inspect --format '{{.Id}}' "${IMAGE[$name]}" >"$archive.id"
      # Keep this archive and the one before it (another worktree's, often), drop older ones; the image the
      # tag held before goes too (its archive keeps it), or every code change leaves gigabytes behind.
      ls -t "$DIR/$name"-*.oci.tar | tail -n +3 | while read -r old; do rm -f "$old" "$old.id"; done
      if [ -n "$previous" ] && [ "$previous" != "$(cat "$archive.id")" ]; then
        podman rmi "$previous" >/dev/null 2>&1 || true
      fi
      log "$name: $(podman image inspect --format '{{.Size}}' "${IMAGE[$name]}" | numfmt --to=iec) image, $(du -h "$archive" | cut -f1) archive, $((SECONDS - started)) s in all"
    fi
    ln -sfn "$(basename "$archive")" "$DIR/$name.oci.tar"
    echo "${IMAGE[$name]} $archive"
  done
}

main "$@"
