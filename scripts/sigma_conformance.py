#!/usr/bin/env python3
"""Cross-check ruleatlas's Sigma engine against an independent implementation.

Peer: pySigma + pysigma-backend-sqlite (pip), converting each SigmaHQ Kubernetes audit and
CloudTrail rule to SQL, run by Python's sqlite3 over the samples in ../shared/data/samples
flattened to one table per log source (column = dotted field path). ruleatlas: the
`sigma_match` example of crates/lang-sigma over the same events written as NDJSON.

Routing is done by hand for the peer (Kubernetes rules query the Kubernetes table, CloudTrail
rules the CloudTrail table); ruleatlas routes by itself.

Usage (from the repository root):
    python3 -m venv /tmp/sigvenv && /tmp/sigvenv/bin/pip install pysigma pysigma-backend-sqlite
    /tmp/sigvenv/bin/python scripts/sigma_conformance.py [--details]

Prints the Markdown table used in CONFORMANCE.md. A peer harness only: never a product
dependency.
"""

import csv
import glob
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("RULEATLAS_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
SAMPLES = os.path.join(DATA, "samples")
RULES = os.path.join(DATA, "rules", "sigma")


def docs_of_text(text):
    """A file's events: a JSON document (object, array, EventList, CloudTrail Records) or NDJSON."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if whole is not None:
        if isinstance(whole, list):
            return [d for d in whole if isinstance(d, dict)]
        if isinstance(whole, dict):
            for k in ("items", "Records"):
                if isinstance(whole.get(k), list):
                    return [d for d in whole[k] if isinstance(d, dict)]
            return [whole]
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except ValueError:
            continue  # malformed line: skipped by both sides
        if isinstance(d, dict):
            out.append(d)
    return out


def hkerma_events():
    """The kubeadm dataset is a 15-column CSV flattened from raw audit events; rebuild them."""
    path = os.path.join(SAMPLES, "hkerma-kubernetes-event-dataset", "audit-logs.csv")
    out = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) != 15:
                continue
            (_host, ts, user, verb, res, sub, name, _rname, uri, audit_id, stage, code,
             _uid, _owner, _duid) = row
            obj = {k: v for k, v in (("resource", res), ("subresource", sub), ("name", name)) if v}
            ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": audit_id,
                  "stage": stage, "verb": verb, "requestURI": uri, "user": {"username": user},
                  "objectRef": obj, "requestReceivedTimestamp": ts}
            if code:
                ev["responseStatus"] = {"code": int(code)} if code.isdigit() else {"code": code}
            out.append(ev)
    return out


def kubernetes_events():
    out = []
    for p in [os.path.join(SAMPLES, "panther-analysis-k8s", "k8s_audit_events.jsonl"),
              os.path.join(SAMPLES, "elastic-integrations-k8s-audit", "test-audit.log")] + \
            sorted(glob.glob(os.path.join(SAMPLES, "falco-legacy-k8s-audit", "trace_files", "*.json"))):
        with open(p, errors="replace") as f:
            out += [d for d in docs_of_text(f.read()) if d.get("kind") == "Event"]
    out += hkerma_events()
    return out


def cloudtrail_events():
    out = []
    for p in sorted(glob.glob(os.path.join(SAMPLES, "otrf-aws-cloudtrail", "*.json"))):
        with open(p) as f:
            out += [d for d in docs_of_text(f.read()) if "eventName" in d]
    return out


def recognised_as_audit(e):
    """ruleatlas's test for a raw audit event (crates/event SourceKind::detect)."""
    if e.get("kind") != "Event":
        return False
    v = e.get("apiVersion")
    if isinstance(v, str):
        return v.startswith("audit.k8s.io/")
    return "auditID" in e and "stage" in e


def flatten(doc, prefix="", out=None):
    """Dotted paths → values, Elasticsearch-style (array elements merge into one path)."""
    if out is None:
        out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, (dict, list)):
                flatten(v, f"{prefix}{k}.", out)
            else:
                out.setdefault(f"{prefix}{k}", []).append(v)
    elif isinstance(doc, list):
        for v in doc:
            if isinstance(v, (dict, list)):
                flatten(v, prefix, out)
            else:
                out.setdefault(prefix[:-1], []).append(v)
    return out


def sql_value(vals):
    vals = ["true" if v is True else "false" if v is False else v for v in vals]
    return vals[0] if len(vals) == 1 else json.dumps(vals)


def build_table(con, name, events):
    rows = [{k: sql_value(v) for k, v in flatten(e).items()} for e in events]
    cols = sorted({k for r in rows for k in r})
    con.execute(f"CREATE TABLE {name} (rowid_ INTEGER, " + ", ".join(f'"{c}"' for c in cols) + ")")
    for i, r in enumerate(rows):
        keys = ["rowid_"] + list(r)
        con.execute(f"INSERT INTO {name} (" + ", ".join(f'"{k}"' for k in keys) + ") VALUES ("
                    + ", ".join("?" for _ in keys) + ")", [i + 1] + list(r.values()))


def peer_matches(con, table, rule_path):
    with open(rule_path) as f:
        coll = SigmaCollection.from_yaml(f.read())
    try:
        queries = sqliteBackend().convert(coll)
    except Exception as e:  # pySigma refuses the rule
        return None, f"pySigma: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    lines = set()
    for q in queries:
        q = q.replace("SELECT * FROM logs", f"SELECT rowid_ FROM {table}", 1)
        for _ in range(20):
            try:
                lines |= {r[0] for r in con.execute(q)}
                break
            except sqlite3.OperationalError as e:
                m = re.match(r"no such column: (.+)", str(e))
                if not m:
                    return None, f"sqlite: {e}"
                # A field no event has: an all-NULL column, as a schemaless store would have.
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{m.group(1).strip("`")}"')
    return lines, None


def ours(events_file, rule_paths):
    env = dict(os.environ)
    target = env.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "-q", "-p", "ruleatlas-lang-sigma", "--example", "sigma_match"],
                   cwd=ROOT, check=True)
    exe = os.path.join(target, "debug", "examples", "sigma_match")
    res = subprocess.run([exe, events_file] + rule_paths, capture_output=True, text=True, check=True)
    out = {}
    for line in res.stdout.splitlines():
        r = json.loads(line)
        out[r["rule"]] = (set(r["lines"]), r["status"])
    return out


def rules_for(product, service=None):
    out = []
    for p in sorted(glob.glob(os.path.join(RULES, "**", "*.yml"), recursive=True)):
        with open(p) as f:
            text = f.read()
        ls = re.search(r"^logsource:\n((?:[ \t]+.*\n)+)", text, re.M)
        if not ls:
            continue
        block = ls.group(1)
        if re.search(rf"product:\s*{product}\b", block) and \
                (service is None or re.search(rf"service:\s*{service}\b", block)):
            out.append(p)
    return out


def main():
    details = "--details" in sys.argv
    tmp = tempfile.mkdtemp(prefix="sigma-conf-")
    con = sqlite3.connect(":memory:")
    # The backend emits `field REGEXP 'pattern'`; SQLite leaves the function to the host.
    con.create_function("REGEXP", 2, lambda pat, val: val is not None and re.search(pat, str(val)) is not None)
    suites = [("kubernetes", kubernetes_events(), rules_for("kubernetes", "audit")),
              ("cloudtrail", cloudtrail_events(), rules_for("aws", "cloudtrail"))]
    total_rules = agree_rules = 0
    print("| source | rule | pySigma+SQLite | ruleatlas | agree | agree on recognised audit events |")
    print("|---|---|---:|---:|:-:|:-:|")
    agree_recognised = 0
    notes = []
    for table, events, rule_paths in suites:
        events_file = os.path.join(tmp, f"{table}.ndjson")
        with open(events_file, "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
        build_table(con, table, events)
        mine = ours(events_file, rule_paths)
        for p in rule_paths:
            rel = os.path.relpath(p, RULES)
            peer, why = peer_matches(con, table, p)
            got, status = mine.get(p, (set(), "missing"))
            ours_cell = str(len(got)) if status == "ok" else f"refused ({status})"
            peer_cell = str(len(peer)) if peer is not None else "refused"
            # Both refusing the rule (e.g. an unresolved placeholder) is agreement too.
            same = (peer is not None and status == "ok" and peer == got) or \
                (peer is None and status != "ok")
            # Panther's trimmed fixtures have neither `apiVersion` nor `auditID`/`stage`;
            # ruleatlas does not recognise those as audit events, so routing keeps Kubernetes
            # rules off them.
            recognised = {ln for ln in (peer or set())
                          if table != "kubernetes" or recognised_as_audit(events[ln - 1])}
            same_rec = same or (peer is not None and status == "ok" and recognised == got)
            total_rules += 1
            agree_rules += same
            agree_recognised += same_rec
            print(f"| {table} | `{os.path.basename(rel)}` | {peer_cell} | {ours_cell} | "
                  f"{'yes' if same else '**no**'} | {'yes' if same_rec else '**no**'} |")
            if not same:
                only_peer = sorted((peer or set()) - got)
                only_ours = sorted(got - (peer or set()))
                notes.append((table, rel, why, only_peer, only_ours))
    print(f"\nevents: kubernetes {len(suites[0][1])}, cloudtrail {len(suites[1][1])}; "
          f"rules agreeing: {agree_rules}/{total_rules}, "
          f"on recognised events: {agree_recognised}/{total_rules}")
    if details:
        for table, rel, why, only_peer, only_ours in notes:
            print(f"\n{table} {rel}: {why or ''}")
            evs = suites[0][1] if table == "kubernetes" else suites[1][1]
            if table == "kubernetes":
                no_api = sum(1 for ln in only_peer if not recognised_as_audit(evs[ln - 1]))
                print(f"  peer only: {len(only_peer)}, of which not recognised as audit events: {no_api}; "
                      f"ruleatlas only: {len(only_ours)}")
            for label, lines in (("peer only", only_peer), ("ruleatlas only", only_ours)):
                for ln in lines[:3]:
                    e = evs[ln - 1]
                    brief = {k: e.get(k) for k in ("verb", "objectRef", "eventName", "eventSource",
                                                   "userIdentity", "responseStatus") if k in e}
                    print(f"  {label} line {ln}: {json.dumps(brief)[:300]}")
                if len(lines) > 3:
                    print(f"  {label}: {len(lines)} events in all")


if __name__ == "__main__":
    main()
