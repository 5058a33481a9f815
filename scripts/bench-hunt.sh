#!/usr/bin/env bash
# Reproducible hunt benchmark: generates audit logs, runs `ruleatlas hunt` with the Kubernetes
# EQL/KQL rules of Elastic's repository, and the PyPI `eql` package on one of those queries over the
# same file, in the same session. Prints a Markdown table for BENCHMARKS.md.
#
#   bash scripts/bench-hunt.sh [EVENTS] [RUNS]
#
# Needs: ../shared/data (or $RULEATLAS_SHARED_DATA), python3 with `pip install eql==1.0.1`,
# GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
runs=${2:-5}
data=${RULEATLAS_SHARED_DATA:-$(pwd)/../shared/data}
work=${BENCH_DIR:-/tmp/ruleatlas-bench}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
python3 -c 'import eql' 2>/dev/null || pip install -q eql==1.0.1

cargo build -q --release -p ruleatlas -p bench
tdir=${CARGO_TARGET_DIR:-target}
bin=$tdir/release/ruleatlas

raw="$work/audit-$events.ndjson"
ecs="$work/audit-$events-ecs.ndjson"
[ -s "$raw" ] || $tdir/release/bench gen-audit --events "$events" --out "$raw"
[ -s "$ecs" ] || $tdir/release/bench gen-audit --events "$events" --out "$ecs" --ecs

# The Kubernetes-related Elastic rules written in EQL or KQL (kubernetes-rules.tsv lists them).
rules="$work/k8s-rules"
rm -rf "$rules" && mkdir -p "$rules"
awk -F'\t' 'NR>1 && ($4=="eql" || $4=="kuery") {print $1}' "$data/rules/elastic/kubernetes-rules.tsv" |
  while read -r p; do ln -s "$data/rules/elastic/$p" "$rules/$(echo "$p" | tr / _)"; done
nrules=$(ls "$rules" | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # label, then the command; prints "label secs rss_kb"
  local label=$1; shift
  local times=() rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }
    read -r t m < "$work/time"
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s\n' "${times[@]}" | median | xargs -I{} echo "$label {} $rss"
}

size_raw=$(stat -c %s "$raw"); size_ecs=$(stat -c %s "$ecs")
query='any where event.dataset == "kubernetes.audit_logs" and kubernetes.audit.objectRef.resource == "services" and kubernetes.audit.verb in ("create", "update", "patch") and kubernetes.audit.requestObject.spec.type == "NodePort"'

{
  measure "ruleatlas-hunt-raw-1t" "$bin" hunt --threads 1 --rules "$rules" "$raw"
  measure "ruleatlas-hunt-raw" "$bin" hunt --rules "$rules" "$raw"
  measure "ruleatlas-hunt-ecs" "$bin" hunt --rules "$rules" "$ecs"
  measure "ruleatlas-query-eql-ecs" "$bin" query --lang eql "$query" "$ecs"
  RUNS_SAVED=$runs; runs=1
  measure "python-eql-1.0.1-ecs" eql query -f "$ecs" --format jsonl "$query"
  runs=$RUNS_SAVED
} | tee "$work/results.txt"

echo
echo "| run | input | events | median s | events/s | MB/s | peak RSS MB |"
echo "|---|---|---:|---:|---:|---:|---:|"
while read -r label secs rss; do
  case $label in *ecs*) size=$size_ecs; input="ECS NDJSON";; *) size=$size_raw; input="raw audit NDJSON";; esac
  awk -v l="$label" -v s="$secs" -v r="$rss" -v n="$events" -v b="$size" -v i="$input" \
    'BEGIN { printf "| %s | %s | %d | %.2f | %.0f | %.1f | %.0f |\n", l, i, n, s, n/s, b/s/1e6, r/1024 }'
done < "$work/results.txt"
echo
echo "rules: $nrules Kubernetes EQL/KQL rules from kubernetes-rules.tsv; runs: $runs (python eql: 1)"
