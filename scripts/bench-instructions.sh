#!/usr/bin/env bash
# Instructions per event (cachegrind), the measure that does not move with a noisy machine.
#
#   bash scripts/bench-instructions.sh [EVENTS]        # default 20000
#
# Takes the first EVENTS lines of the generated audit log ($BENCH_DIR/audit-1000000.ndjson, made
# with `bench gen-audit` if missing), and counts with `valgrind --tool=cachegrind --cache-sim=no`
# the instructions of: the sonic-rs parse-only pass, and `ruleatlas hunt --threads 1` with
# (b) rules/sigma and (c) rules/ of ../shared/data (or $RULEATLAS_SHARED_DATA) — each over the
# sample and over an empty file (rule loading alone). Prints (sample − empty) / EVENTS per row.
# Needs valgrind (Debian package `valgrind`). Takes a few minutes (cachegrind runs ~50× slower).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-20000}
data=${RULEATLAS_SHARED_DATA:-$(pwd)/../shared/data}
work=${BENCH_DIR:-/tmp/ruleatlas-bench}
mkdir -p "$work"
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
cargo build -q --release -p ruleatlas -p bench
tdir=${CARGO_TARGET_DIR:-target}
full="$work/audit-1000000.ndjson"
[ -s "$full" ] || "$tdir/release/bench" gen-audit --events 1000000 --out "$full" >&2
sample="$work/sample-$events.ndjson"
empty="$work/empty.ndjson"
head -n "$events" "$full" > "$sample"
: > "$empty"

count() { # output file, command...
  local out=$1
  shift
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out" "$@" > /dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"
}

row() { # label, command (the input file is appended)
  local label=$1
  shift
  local with without
  with=$(count "$work/cg.with" "$@" "$sample")
  without=$(count "$work/cg.without" "$@" "$empty")
  awk -v l="$label" -v w="$with" -v wo="$without" -v n="$events" \
    'BEGIN { printf "| %s | %d | %d | %.2f G |\n", l, (w - wo) / n, n, wo / 1e9 }'
}

echo "Commit: $(git rev-parse --short HEAD)$(git diff --quiet -- crates || echo ' + uncommitted changes in crates/')"
echo
echo "| run | instructions per event | events | instructions without events (loading) |"
echo "|---|---:|---:|---:|"
row "parse-only (sonic-rs)" "$tdir/release/bench" parse --parser sonic-rs --threads 1
row "(b) rules/sigma" "$tdir/release/ruleatlas" hunt --threads 1 --rules "$data/rules/sigma"
row "(c) rules/" "$tdir/release/ruleatlas" hunt --threads 1 --rules "$data/rules"
