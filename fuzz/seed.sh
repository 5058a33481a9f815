#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds taken from the shared corpora (../shared/data, or
# $RULEATLAS_SHARED_DATA). The corpora's licences allow use as test input, not redistribution:
# the seeds are copied at run time and never committed (corpus/ is ignored).
set -euo pipefail
cd "$(dirname "$0")"
data="${RULEATLAS_SHARED_DATA:-../../shared/data}"
[ -d "$data" ] || { echo "seed: no corpus at $data" >&2; exit 1; }
mkdir -p corpus/{eql,kql,sigma,falco,events}
python3 - "$data" <<'PY'
import hashlib, os, pathlib, sys, tomllib
data = pathlib.Path(sys.argv[1])
out = pathlib.Path("corpus")
def put(target, text):
    b = text.encode() if isinstance(text, str) else text
    b = b[:65536]
    (out / target / hashlib.sha1(b).hexdigest()).write_bytes(b)
n = {"eql": 0, "kql": 0, "sigma": 0, "falco": 0, "events": 0}
conf = data / "eql-conformance" / "test_queries.toml"
if conf.exists():
    for q in tomllib.loads(conf.read_text()).get("queries", []):
        if isinstance(q, dict) and "query" in q:
            put("eql", q["query"]); n["eql"] += 1
for p in sorted((data / "rules" / "elastic").rglob("*.toml")):
    try:
        rule = tomllib.loads(p.read_text()).get("rule", {})
    except Exception:
        continue
    lang, q = rule.get("language"), rule.get("query")
    if lang == "eql" and q:
        put("eql", q); n["eql"] += 1
    elif lang == "kuery" and q:
        put("kql", q); n["kql"] += 1
        if n["kql"] % 10 == 0:
            put("kql", p.read_text())
for i, p in enumerate(sorted((data / "rules" / "sigma").rglob("*.yml"))):
    if i % 6 == 0 or "correlation" in p.name:
        put("sigma", p.read_text(errors="replace")); n["sigma"] += 1
for p in sorted(list((data / "rules" / "falco").rglob("*.yaml")) + list((data / "samples").rglob("*.yaml"))):
    put("falco", p.read_text(errors="replace")); n["falco"] += 1
for p in sorted((data / "samples").rglob("*")):
    if p.is_file() and p.suffix in (".json", ".jsonl", ".ndjson", ".log", ".gz", ".txt") and p.stat().st_size < 1 << 20:
        put("events", p.read_bytes()); n["events"] += 1
print("seeds:", n)
PY
