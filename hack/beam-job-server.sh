#!/usr/bin/env bash
# Fetches Beam's job-server jar for a distributed runner from Maven Central with Maven (`mvn dependency:copy`),
# into $SLIPWAY_CACHE keyed by runner and Beam version, so the Beam steps can run on a real Flink or Spark:
#   java -jar <jar> --job-port 8099 --artifact-port 0 --expansion-port 0   (Flink: an embedded [local] cluster)
# BEAM_VERSION defaults to the apache-beam in the venv (Python SDK and job server must match);
# BEAM_JOB_SERVER defaults to flink-1.19 (others: flink-1.20, flink-2.0, spark-3).
# Prints the jar's path; exits 1 with Maven's own error when the registry does not serve the artifact.
set -euo pipefail

CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
PYTHON="${PYTHON:-.venv/bin/python}"
BEAM_VERSION="${BEAM_VERSION:-$("$PYTHON" -c 'import apache_beam; print(apache_beam.__version__)')}"
BEAM_JOB_SERVER="${BEAM_JOB_SERVER:-flink-1.19}"
artifact="beam-runners-$BEAM_JOB_SERVER-job-server"
dir="$CACHE/$artifact-$BEAM_VERSION"
jar="$dir/$artifact-$BEAM_VERSION.jar"

if [ ! -s "$jar" ]; then
  command -v mvn >/dev/null || { echo "beam-job-server: mvn not found (apt-get install maven)" >&2; exit 1; }
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  echo "beam-job-server: fetching org.apache.beam:$artifact:$BEAM_VERSION with mvn" >&2
  if ! mvn -B -q -U dependency:copy "-Dartifact=org.apache.beam:$artifact:$BEAM_VERSION" \
      "-DoutputDirectory=$dir.tmp" >"$dir.tmp/mvn.log" 2>&1; then
    grep -m1 'ERROR' "$dir.tmp/mvn.log" >&2 || tail -5 "$dir.tmp/mvn.log" >&2
    rm -rf "$dir.tmp"
    exit 1
  fi
  rm -f "$dir.tmp/mvn.log"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$jar"
