#!/usr/bin/env bash
# Hunt at speed (issues 3 and 6): every measurement in one go, same file, same session.
#
#   bash scripts/bench-all.sh [EVENTS] [RUNS]        # defaults: 1000000 5
#
# Generates a raw audit log once (`bench gen-audit`, reused if present under $BENCH_DIR, default
# /tmp/ruleatlas-bench) and its ECS twin, assembles three rule sets from ../shared/data/rules (or
# $RULEATLAS_SHARED_DATA):
#   (a) k8s    the Kubernetes rules of all vendors: the Elastic files listed in
#              rules/elastic/kubernetes-rules.tsv, Sigma rules/application/kubernetes/audit,
#              falco/k8s_audit_rules.yaml
#   (b) sigma  the whole rules/sigma folder (3,780 files)
#   (c) all    rules/ (every vendor)
# and times with GNU time (median of RUNS, peak RSS = max over the runs):
#   ruleatlas hunt --threads 1|2 with (a) (b) (c) (and over an empty file: rule loading alone); `bench parse` with serde_json, sonic-rs and
#   simd-json's tape (1 and 2 threads: the parse-only ceiling); rsigma engine eval 0.23.0 with the 16 Sigma
#   Kubernetes audit rules, SigmaHQ rules/ and the whole sigma folder (the latter also with rsigma's
#   opt-in --logsource-routing, events declared product=kubernetes,service=audit); the PyPI `eql` 1.0.1 with one
#   Kubernetes EQL query over the ECS twin; (c) with 2 threads over 4x EVENTS for peak RSS; the
#   parse-only pass and (c) alternated RUNS times per thread count (the ratio of each pair, their
#   median: the VM's drift between rows taken out).
# Then compares alert counts per rule (ruleatlas vs rsigma, whole sigma folder) and checks that
# every ruleatlas alert with (b) comes from a rule whose logsource is product: kubernetes.
# Writes a Markdown report to $BENCH_DIR/results.md and stdout.
#
# Environment: BENCH_DIR, RULEATLAS_SHARED_DATA, CARGO_TARGET_DIR, RSIGMA (default
# /opt/rsigma/bin/rsigma; rows are skipped when missing), RSIGMA_RUNS (runs for rsigma's two big
# rule sets, default 1: they take minutes each at 1 M events; the 16-rule set gets RUNS),
# EQL_RUNS (default 1), BIG_EVENTS (default 4 x EVENTS; 0 skips the RSS-growth run),
# CEILING_PARSER (serde_json|sonic-rs; default: sonic-rs if crates/event or crates/engine depend
# on it, else serde_json).
#
# Needs: GNU time (/usr/bin/time, Debian package `time`), jq, python3 with PyYAML and
# `pip install eql==1.0.1`.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
runs=${2:-5}
data=${RULEATLAS_SHARED_DATA:-$(pwd)/../shared/data}
work=${BENCH_DIR:-/tmp/ruleatlas-bench}
rsigma=${RSIGMA:-/opt/rsigma/bin/rsigma}
rsigma_runs=${RSIGMA_RUNS:-1}
eql_runs=${EQL_RUNS:-1}
big_events=${BIG_EVENTS:-$((events * 4))}
mkdir -p "$work"
started=$(date +%s)
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
command -v jq >/dev/null || apt-get install -y jq >/dev/null
python3 -c 'import yaml' 2>/dev/null || pip install -q pyyaml
python3 -c 'import eql' 2>/dev/null || pip install -q eql==1.0.1

cargo build -q --release -p ruleatlas -p bench
tdir=${CARGO_TARGET_DIR:-target}
bin=$tdir/release/ruleatlas
benchbin=$tdir/release/bench

if [ -z "${CEILING_PARSER:-}" ]; then
  if grep -qs '^sonic-rs' crates/event/Cargo.toml crates/engine/Cargo.toml; then
    CEILING_PARSER=sonic-rs
  else
    CEILING_PARSER=serde_json
  fi
fi

gen() { # events, file, [--ecs]
  [ -s "$2" ] || "$benchbin" gen-audit --events "$1" --out "$2" ${3:-} 2>&1 | sed 's/^/  /' >&2
}
raw="$work/audit-$events.ndjson"
ecs="$work/audit-$events-ecs.ndjson"
gen "$events" "$raw"
gen "$events" "$ecs" --ecs

# ---- rule sets -----------------------------------------------------------------------------
rules="$data/rules"
k8s="$work/rules-k8s"
rm -rf "$k8s" && mkdir -p "$k8s"
awk -F'\t' 'NR>1 {print $1}' "$rules/elastic/kubernetes-rules.tsv" |
  while read -r p; do ln -s "$rules/elastic/$p" "$k8s/elastic_$(echo "$p" | tr / _)"; done
ln -s "$rules/sigma/rules/application/kubernetes/audit" "$k8s/sigma-k8s-audit"
ln -s "$rules/falco/k8s_audit_rules.yaml" "$k8s/falco_k8s_audit_rules.yaml"
n_elastic=$(awk -F'\t' 'NR>1' "$rules/elastic/kubernetes-rules.tsv" | wc -l)
n_sigma_k8s=$(find "$rules/sigma/rules/application/kubernetes/audit" -name '*.yml' | wc -l)
n_sigma=$(find "$rules/sigma" -name '*.yml' -o -name '*.yaml' | wc -l)
n_sigma_rules=$(find "$rules/sigma/rules" -name '*.yml' | wc -l)
n_all=$(find -L "$rules" -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.toml' \) | wc -l)
declare -A setpath=([a]="$k8s" [b]="$rules/sigma" [c]="$rules")
declare -A setname=(
  [a]="(a) k8s: $n_elastic Elastic + $n_sigma_k8s Sigma + Falco k8s_audit_rules.yaml"
  [b]="(b) sigma/: $n_sigma files"
  [c]="(c) rules/: $n_all files, all vendors"
)

# ---- measuring -----------------------------------------------------------------------------
results="$work/results.tsv"
: > "$results"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# measure KEY RULES THREADS EVENTS INPUT NRUNS STDOUT -- command...
# Appends "key<TAB>rules<TAB>threads<TAB>events<TAB>input<TAB>median<TAB>rss_kb<TAB>runs<TAB>status".
# The command's stdout goes to STDOUT (a file or /dev/null), its stderr to $work/KEY.stderr (last run).
measure() {
  local key=$1 rules=$2 threads=$3 n=$4 input=$5 nruns=$6 out=$7; shift 8
  local times=() rss=0 status=ok t m
  echo "  $key ($nruns run(s))" >&2
  for _ in $(seq "$nruns"); do
    if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$out" 2>"$work/$key.stderr"; then
      status="exit $(grep -o 'status [0-9]*' "$work/time" | grep -o '[0-9]*' || echo '?')"
      echo "    failed ($status); stderr tail:" >&2; tail -5 "$work/$key.stderr" | sed 's/^/    /' >&2
    fi
    read -r t m < <(tail -1 "$work/time")
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  local med; med=$(printf '%s\n' "${times[@]}" | median)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$rules" "$threads" "$n" "$input" "$med" "$rss" "$nruns" "$status" >> "$results"
}

query='any where event.dataset == "kubernetes.audit_logs" and kubernetes.audit.objectRef.resource == "services" and kubernetes.audit.verb in ("create", "update", "patch") and kubernetes.audit.requestObject.spec.type == "NodePort"'

echo "measuring ($events events, $runs runs) in $work" >&2
for parser in serde_json sonic-rs simd-json-tape; do
  for t in 1 2; do
    measure "parse-$parser-${t}t" "none (parse only, $parser)" "$t" "$events" "$raw" "$runs" /dev/null -- \
      "$benchbin" parse "$raw" --parser "$parser" --threads "$t"
  done
done
for s in a b c; do
  for t in 1 2; do
    measure "ruleatlas-$s-${t}t" "${setname[$s]}" "$t" "$events" "$raw" "$runs" /dev/null -- \
      "$bin" hunt --threads "$t" --rules "${setpath[$s]}" "$raw"
  done
done
# The pipeline floor: one Sigma rule that never matches, every line parsed (--no-prefilter) — what
# reading, parsing, projecting and routing cost before any rule work, against (c).
mkdir -p "$work/floor-rule"
cat > "$work/floor-rule/never.yml" <<'YML'
title: Pipeline floor (never matches)
id: 00000000-0000-4000-8000-00000000f100
status: test
logsource:
  product: kubernetes
  service: audit
detection:
  sel:
    verb: no-such-verb
  condition: sel
level: low
YML
# The floor with (c)'s fields: one rule that reads every field (c)'s rules read (the list the hunt
# prints with RULEATLAS_RULE_PROFILE=1) and is never a candidate (anchored on a verb no event has),
# so every line is parsed keeping what (c) keeps and no rule runs. With loading (c) added, what
# (c) costs before its first rule test.
: > "$work/empty.ndjson"
mkdir -p "$work/floor-c-fields-rule"
RULEATLAS_RULE_PROFILE=1 "$bin" hunt --threads 1 --rules "$rules" "$work/empty.ndjson" 2>&1 >/dev/null |
  sed -n 's/^profile: fields kept: //p' | tr ',' '\n' | sed 's/^ *//' | grep -vx 'verb' | grep . > "$work/c-fields.txt" || true
n_c_fields=$(( $(wc -l < "$work/c-fields.txt") + 1 ))
{
  printf 'title: Pipeline floor with the fields of (c) (never matches)\nid: 00000000-0000-4000-8000-00000000f156\n'
  printf 'status: test\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n  sel:\n    verb: no-such-verb\n'
  sed "s/'/''/g; s/.*/    '&': no-such-value/" "$work/c-fields.txt"
  printf '  condition: sel\nlevel: low\n'
} > "$work/floor-c-fields-rule/never.yml"
for t in 1 2; do
  measure "ruleatlas-floor-${t}t" "1 rule that never matches, every line parsed (--no-prefilter)" "$t" "$events" "$raw" "$runs" /dev/null -- \
    "$bin" hunt --no-prefilter --threads "$t" --rules "$work/floor-rule" "$raw"
  measure "ruleatlas-floor-c-fields-${t}t" "1 rule reading the $n_c_fields fields (c) reads, never a candidate" "$t" "$events" "$raw" "$runs" /dev/null -- \
    "$bin" hunt --no-prefilter --threads "$t" --rules "$work/floor-c-fields-rule" "$raw"
done
# Loading and compiling the rules alone (an empty input file), to read the per-event cost off the above.
for s in a b c; do
  measure "ruleatlas-$s-load-only" "${setname[$s]}" 1 0 "$work/empty.ndjson" 1 /dev/null -- \
    "$bin" hunt --threads 1 --rules "${setpath[$s]}" "$work/empty.ndjson"
done
# One untimed run with (b) keeping the alerts, for the per-rule table and the logsource check.
"$bin" hunt --threads 2 --rules "$rules/sigma" --output "$work/ruleatlas-b-alerts.ndjson" "$raw" 2>"$work/ruleatlas-b-alerts.stderr"

if [ -x "$rsigma" ]; then
  rsigma_version=$("$rsigma" --version 2>&1 | head -1)
  measure "rsigma-k8s-1t" "Sigma kubernetes/audit: $n_sigma_k8s files" 1 "$events" "$raw" "$runs" "$work/rsigma-k8s.ndjson" -- \
    "$rsigma" engine eval --rules "$rules/sigma/rules/application/kubernetes/audit" --event "@$raw"
  measure "rsigma-rules-1t" "SigmaHQ rules/: $n_sigma_rules files" 1 "$events" "$raw" "$rsigma_runs" "$work/rsigma-rules.ndjson" -- \
    "$rsigma" engine eval --rules "$rules/sigma/rules" --event "@$raw"
  measure "rsigma-b-1t" "${setname[b]}" 1 "$events" "$raw" "$rsigma_runs" "$work/rsigma-b.ndjson" -- \
    "$rsigma" engine eval --rules "$rules/sigma" --event "@$raw"
  # rsigma at its best: its opt-in logsource pruning, every event declared a Kubernetes audit event.
  measure "rsigma-b-routed-1t" "${setname[b]}, --logsource-routing" 1 "$events" "$raw" "$rsigma_runs" "$work/rsigma-b-routed.ndjson" -- \
    "$rsigma" engine eval --rules "$rules/sigma" --event "@$raw" \
    --logsource-routing --event-logsource product=kubernetes,service=audit
else
  rsigma_version="not found at $rsigma (set RSIGMA=…): rows skipped"
  : > "$work/rsigma-b.ndjson"; : > "$work/rsigma-b-routed.ndjson"
fi
# The per-rule table compares with rsigma on the whole sigma folder, or on rules/ if that run failed.
rs_label="whole sigma folder"; rs_out="$work/rsigma-b.ndjson"
if [ -x "$rsigma" ] && ! awk -F'\t' '$1=="rsigma-b-1t" && $9=="ok" {f=1} END {exit !f}' "$results"; then
  rs_label="SigmaHQ rules/ (the whole-folder run failed)"; rs_out="$work/rsigma-rules.ndjson"
fi

measure "python-eql-1.0.1" "1 EQL query (Elastic's NodePort rule)" 1 "$events" "$ecs" "$eql_runs" "$work/query-eql.ndjson" -- \
  eql query -f "$ecs" --format jsonl "$query"
# `query` searches the lines for the literals every match needs (here NodePort, services…) and
# parses only those; with --no-prefilter it parses every line, as python eql does.
for t in 1 2; do
  measure "ruleatlas-query-eql-${t}t" "1 EQL query (Elastic's NodePort rule)" "$t" "$events" "$ecs" "$runs" "$work/query-${t}t.ndjson" -- \
    "$bin" query --threads "$t" --lang eql "$query" "$ecs"
done
measure "ruleatlas-query-eql-no-prefilter" "1 EQL query (Elastic's NodePort rule), every line parsed" 1 "$events" "$ecs" "$runs" "$work/query-all.ndjson" -- \
  "$bin" query --no-prefilter --lang eql "$query" "$ecs"
# The floor under any tool that reads the ECS file: copying it from the page cache, and counting
# its lines (what a 100x-eql target would have to beat, see the ratio lines).
measure "read-floor-cat" "none (cat > /dev/null)" 1 "$events" "$ecs" "$runs" /dev/null -- cat "$ecs"
measure "read-floor-wc-l" "none (wc -l)" 1 "$events" "$ecs" "$runs" /dev/null -- wc -l "$ecs"

if [ "$big_events" -gt 0 ]; then
  big="$work/audit-$big_events.ndjson"
  gen "$big_events" "$big"
  # Read once before the timed run, as the other rows' file is by the runs before them: read
  # cold, the VM's memory made the kernel's page-cache copy a fifth of this row's time.
  cat "$big" >/dev/null
  measure "ruleatlas-c-2t-big" "${setname[c]}" 2 "$big_events" "$big" 1 /dev/null -- \
    "$bin" hunt --threads 2 --rules "$rules" "$big"
fi

# ---- instructions per event (callgrind): the machine's noise does not move these -------------
# Over the first 20,000 events, minus the same command over an empty file (loading): (c) on one
# thread, and the parse ceiling.
instr_note="callgrind not run (valgrind not installed)"
if command -v valgrind >/dev/null; then
  head -n 20000 "$raw" > "$work/head-20000.ndjson"
  instr() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | awk '/Collected/ {print $4}'; }
  c_all=$(instr "$bin" hunt --threads 1 --rules "$rules" "$work/head-20000.ndjson")
  c_load=$(instr "$bin" hunt --threads 1 --rules "$rules" "$work/empty.ndjson")
  p_all=$(instr "$benchbin" parse "$work/head-20000.ndjson" --parser "$CEILING_PARSER")
  p_none=$(instr "$benchbin" parse "$work/empty.ndjson" --parser "$CEILING_PARSER")
  f_all=$(instr "$bin" hunt --no-prefilter --threads 1 --rules "$work/floor-rule" "$work/head-20000.ndjson")
  f_load=$(instr "$bin" hunt --no-prefilter --threads 1 --rules "$work/floor-rule" "$work/empty.ndjson")
  g_all=$(instr "$bin" hunt --no-prefilter --threads 1 --rules "$work/floor-c-fields-rule" "$work/head-20000.ndjson")
  g_load=$(instr "$bin" hunt --no-prefilter --threads 1 --rules "$work/floor-c-fields-rule" "$work/empty.ndjson")
  instr_note=$(awk -v ca="$c_all" -v cl="$c_load" -v pa="$p_all" -v pn="$p_none" -v fa="$f_all" -v fl="$f_load" -v ga="$g_all" -v gl="$g_load" 'BEGIN {
    c = (ca - cl) / 20000; p = (pa - pn) / 20000; f = (fa - fl) / 20000; g = (ga - gl) / 20000;
    printf "instructions per event (callgrind, first 20,000 events, loading subtracted): %s parse %.0f; pipeline floor (1 rule) %.0f (%.0f %% of it the parse); floor with the fields of (c) %.0f; (c) %.0f (the parse %.0f %% of it, the floor with its fields %.0f %%); loading (c) %.0f M instructions", "'"$CEILING_PARSER"'", p, f, 100 * p / f, g, c, 100 * p / c, 100 * g / c, cl / 1e6 }')
fi

# ---- alert counts per rule and logsource check ------------------------------------------------
"$bin" check --json "$rules/sigma" > "$work/sigma-check.ndjson" 2>/dev/null || true
python3 - "$work/ruleatlas-b-alerts.ndjson" "$rs_out" "$work/sigma-check.ndjson" "$work/rsigma-b-routed.ndjson" \
  > "$work/per-rule.md" <<'PY'
import collections, json, sys, yaml

ra_path, rs_path, check_path, rr_path = sys.argv[1:5]
paths = collections.defaultdict(list)
titles = {}
for line in open(check_path, encoding="utf-8"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("id"):
        paths[r["id"]].append(r.get("path"))
        titles.setdefault(r["id"], r.get("title"))

def logsource(rule_id):
    """product/service/category of the rule's YAML document with this id ('correlation' for those)."""
    found = []
    for p in paths.get(rule_id, []):
        try:
            docs = list(yaml.safe_load_all(open(p, encoding="utf-8")))
        except Exception as e:  # noqa: BLE001 — report, don't stop
            found.append(f"unreadable: {e.__class__.__name__}")
            continue
        for d in docs:
            if isinstance(d, dict) and d.get("id") == rule_id:
                if "correlation" in d:
                    found.append("correlation")
                else:
                    ls = d.get("logsource") or {}
                    found.append("/".join(f"{k}:{ls[k]}" for k in ("product", "service", "category") if k in ls))
    return ", ".join(sorted(set(found))) or "?"

def count(path, key):
    c, names = collections.Counter(), {}
    try:
        fh = open(path, encoding="utf-8")
    except OSError:
        return c, names
    for line in fh:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        rid, title = key(d)
        c[rid] += 1
        names.setdefault(rid, title)
    return c, names

ra, ra_names = count(ra_path, lambda d: ((d.get("rule") or {}).get("id"), (d.get("rule") or {}).get("name")))
rs, rs_names = count(rs_path, lambda d: (d.get("rule_id") or d.get("rule_title"), d.get("rule_title")))
rr, rr_names = count(rr_path, lambda d: (d.get("rule_id") or d.get("rule_title"), d.get("rule_title")))
ids = sorted(set(ra) | set(rs) | set(rr), key=lambda i: (-ra.get(i, 0), -rs.get(i, 0), -rr.get(i, 0), str(i)))
print("| rule (Sigma) | logsource | ruleatlas alerts | rsigma detections | rsigma --logsource-routing |")
print("|---|---|---:|---:|---:|")
rows = 0
for i in ids:
    title = ra_names.get(i) or rs_names.get(i) or rr_names.get(i) or titles.get(i) or i
    if rows < 60 or ra.get(i) or rr.get(i):
        print(f"| {title} | {logsource(i)} | {ra.get(i, 0)} | {rs.get(i, 0)} | {rr.get(i, 0)} |")
        rows += 1
if len(ids) > rows:
    rest = [i for i in ids[rows:]]
    print(f"| … {len(rest)} more rules only rsigma reports | | 0 | {sum(rs[i] for i in rest)} | 0 |")
print(f"| **total** ({len(ra)} / {len(rs)} / {len(rr)} rules) | | **{sum(ra.values())}** | **{sum(rs.values())}** | **{sum(rr.values())}** |")
print()
bad = [i for i in ra if "product:kubernetes" not in logsource(i)]
if bad:
    print(f"Logsource check: **FAILED**: {len(bad)} rules alerting with (b) are not `product: kubernetes`:")
    for i in bad:
        print(f"- {ra_names.get(i)} ({i}): {logsource(i)}, {ra[i]} alerts")
else:
    print(f"Logsource check: all {sum(ra.values())} ruleatlas alerts with (b) come from the {len(ra)} rules "
          "whose logsource is `product: kubernetes` (read from each alerting rule's YAML).")
for name, counts in (("rsigma", rs), ("rsigma --logsource-routing", rr)):
    other = sum(n for i, n in counts.items() if "product:kubernetes" not in logsource(i))
    print(f"{name}: {other} of {sum(counts.values())} detections come from rules whose "
          "logsource is not `product: kubernetes`.")
PY

# ---- paired ---------------------------------------------------------------------------------
# The ceiling and (c) alternated run by run (a parse-only pass, then the hunt), the median of the
# RUNS ratios: a drift in the VM's speed between the rows above moves their ratio, a pair far
# less (nothing helps against a mood that slows one workload and not the other).
paired_ratio() { # threads
  local t=$1 r=() c h
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e' -o "$work/pair-time" "$benchbin" parse "$raw" --parser "$CEILING_PARSER" --threads "$t" >/dev/null 2>&1 || true
    c=$(tail -1 "$work/pair-time")
    /usr/bin/time -f '%e' -o "$work/pair-time" "$bin" hunt --threads "$t" --rules "${setpath[c]}" "$raw" >/dev/null 2>&1 || true
    h=$(tail -1 "$work/pair-time")
    r+=("$(awk -v c="$c" -v h="$h" 'BEGIN {if (h > 0) printf "%.4f", c / h; else print 0}')")
  done
  printf '%s\n' "${r[@]}" | median
}
echo "  paired: parse-only pass then (c), $runs times on 1 thread and on 2" >&2
pair1=$(paired_ratio 1)
pair2=$(paired_ratio 2)

# ---- report ---------------------------------------------------------------------------------
ceiling() { awk -F'\t' -v k="parse-$CEILING_PARSER-$1t" '$1==k {print $6}' "$results"; }
c1=$(ceiling 1); c2=$(ceiling 2)
eps() { awk -F'\t' -v k="$1" '$1==k && $6>0 {printf "%.0f", $4/$6}' "$results"; }
elapsed=$(( $(date +%s) - started ))
{
  echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`bash scripts/bench-all.sh $events $runs\` (took $((elapsed / 60)) min $((elapsed % 60)) s)."
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"
  echo "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $(rustc --version); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' + uncommitted changes in crates/')."
  echo "Input: $events raw audit events, $(stat -c %s "$raw" | awk '{printf "%.2f GB", $1/1e9}') ($(stat -c %s "$raw" | awk -v n="$events" '{printf "%.0f", $1/n}') B/event);"
  echo "ECS twin for eql: $(stat -c %s "$ecs" | awk '{printf "%.2f GB", $1/1e9}'). rsigma: $rsigma_version."
  echo
  echo "| run | rules | threads | events | runs | median s | events/s | MB/s | peak RSS MB | ratio to parse ceiling ($CEILING_PARSER) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  while IFS=$'\t' read -r key rset threads n input med rss nr status; do
    size=$(stat -c %s "$input")
    ceil=""
    if [ "$input" = "$raw" ] && [[ $key != parse-* ]]; then
      [ "$threads" = 1 ] && ceil=$c1 || ceil=$c2
    fi
    [ "$status" = ok ] || key="$key ($status)"
    awk -v k="$key" -v r="$rset" -v t="$threads" -v n="$n" -v nr="$nr" -v s="$med" -v m="$rss" -v b="$size" -v c="$ceil" \
      'BEGIN { s = (s > 0 ? s : 0.01);
               printf "| %s | %s | %s | %d | %d | %.2f | %.0f | %.1f | %.0f | %s |\n", k, r, t, n, nr, s, n/s, b/s/1e6, m/1024,
                      (c == "" ? "–" : sprintf("%.0f %%", 100 * c / s)) }'
  done < "$results"
  echo
  echo "Ratios: (c) 2 threads vs the $CEILING_PARSER parse ceiling (2 threads): $(awk -v a="$(eps ruleatlas-c-2t)" -v b="$(eps parse-$CEILING_PARSER-2t)" 'BEGIN {if (b>0) printf "%.0f %%", 100*a/b; else print "–"}');"
  echo "ruleatlas (b) 1 thread vs rsigma whole sigma folder (1 thread): $(awk -v a="$(eps ruleatlas-b-1t)" -v b="$(eps rsigma-b-1t)" 'BEGIN {if (b>0) printf "%.1f×", a/b; else print "–"}'), vs rsigma with --logsource-routing: $(awk -v a="$(eps ruleatlas-b-1t)" -v b="$(eps rsigma-b-routed-1t)" 'BEGIN {if (b>0) printf "%.1f×", a/b; else print "–"}');"
  echo "(c) 1 thread vs the $CEILING_PARSER parse ceiling (1 thread): $(awk -v a="$(eps ruleatlas-c-1t)" -v b="$(eps parse-$CEILING_PARSER-1t)" 'BEGIN {if (b>0) printf "%.0f %%", 100*a/b; else print "–"}');"
  echo "(c) vs the ceiling paired run by run (a parse-only pass then the hunt, median of $runs ratios): $(awk -v p="$pair1" 'BEGIN {printf "%.0f %%", 100*p}') with 1 thread, $(awk -v p="$pair2" 'BEGIN {printf "%.0f %%", 100*p}') with 2;"
  echo "Pipeline floor (1 rule, every line parsed) vs the ceiling: $(awk -v a="$(eps ruleatlas-floor-1t)" -v b="$(eps parse-$CEILING_PARSER-1t)" 'BEGIN {if (b>0) printf "%.0f %%", 100*a/b; else print "–"}') on 1 thread, $(awk -v a="$(eps ruleatlas-floor-2t)" -v b="$(eps parse-$CEILING_PARSER-2t)" 'BEGIN {if (b>0) printf "%.0f %%", 100*a/b; else print "–"}') on 2;"
  med() { awk -F'\t' -v k="$1" '$1==k {print $6}' "$results"; }
  fixed() { # threads: floor with (c)'s fields + loading (c), against half the ceiling
    awk -v f="$(med ruleatlas-floor-c-fields-${1}t)" -v l="$(med ruleatlas-c-load-only)" -v c="$(med parse-$CEILING_PARSER-${1}t)" \
      'BEGIN {if (c>0) printf "%.2f s + loading %.2f s = %.2f s against %.2f s (the floor alone at %.0f %% of the ceiling)", f, l, f + l, 2 * c, 100 * c / f; else print "–"}'; }
  echo "Before any rule runs, (c) costs the floor with its $n_c_fields fields plus its loading: on 1 thread $(fixed 1), on 2 $(fixed 2) — (c) at half the ceiling would have to run all its rules and write its alerts in what is left;"
  echo "$instr_note."
  echo "ruleatlas (b) 2 threads vs rsigma whole sigma folder (1 thread, rsigma's eval uses one): $(awk -v a="$(eps ruleatlas-b-2t)" -v b="$(eps rsigma-b-1t)" 'BEGIN {if (b>0) printf "%.1f×", a/b; else print "–"}');"
  ratio() { awk -v a="$(eps "$1")" -v b="$(eps "$2")" 'BEGIN {if (b>0) printf "%.1f×", a/b; else print "–"}'; }
  echo "\`ruleatlas query\` vs python eql, the same query over the same ECS file: $(ratio ruleatlas-query-eql-2t python-eql-1.0.1) with 2 threads, $(ratio ruleatlas-query-eql-1t python-eql-1.0.1) with 1, $(ratio ruleatlas-query-eql-no-prefilter python-eql-1.0.1) parsing every line (--no-prefilter);"
  same() { cmp -s "$work/query-all.ndjson" "$1" && echo identical || echo DIFFERENT; }
  echo "Matching events: python eql $(wc -l < "$work/query-eql.ndjson"), ruleatlas $(wc -l < "$work/query-all.ndjson") (output with the prefilter, 2 threads: $(same "$work/query-2t.ndjson"), 1 thread: $(same "$work/query-1t.ndjson"), to --no-prefilter's); $(grep -h 'prefilter:' "$work/ruleatlas-query-eql-2t.stderr" | sed 's/^query: //' | cut -d';' -f1)."
  echo "100× python eql would mean $(awk -v e="$(med python-eql-1.0.1)" 'BEGIN {printf "%.2f s", e/100}') for the ECS file, against $(med read-floor-cat) s to \`cat\` it to /dev/null and $(med read-floor-wc-l) s for \`wc -l\`."
  [ "$big_events" -gt 0 ] && echo "Peak RSS (c) 2 threads: $(awk -F'\t' '$1=="ruleatlas-c-2t" {printf "%.0f MB", $7/1024}' "$results") at $events events vs $(awk -F'\t' '$1=="ruleatlas-c-2t-big" {printf "%.0f MB", $7/1024}' "$results") at $big_events."
  echo
  echo "Rules loaded (ruleatlas stderr): $(grep -h 'rules run' "$work/ruleatlas-a-1t.stderr" "$work/ruleatlas-b-1t.stderr" "$work/ruleatlas-c-1t.stderr" 2>/dev/null | sed 's/^hunt: //' | paste -sd ';' | sed 's/;/; /g')."
  if [ -x "$rsigma" ]; then
    for k in rsigma-k8s-1t rsigma-rules-1t rsigma-b-1t rsigma-b-routed-1t; do
      echo "$k (stderr): $(grep -hE 'Loaded|parse errors|Processed|rror' "$work/$k.stderr" 2>/dev/null | head -4 | paste -sd ';' | sed 's/;/; /g')"
      echo
    done
  fi
  echo "Alert counts per rule with (b), ruleatlas (untimed run, \`--threads 2 --output\`) vs rsigma ($rs_label; last timed run):"
  echo
  cat "$work/per-rule.md"
} | tee "$work/results.md"
