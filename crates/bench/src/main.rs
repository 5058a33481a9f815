//! Benchmark input generator: realistic Kubernetes audit logs, deterministic for a seed.
//!
//! `cargo run --release -p bench -- gen-audit --events 1000000 --out /tmp/audit.ndjson`
//!
//! `bench parse FILE --parser sonic-rs [--threads N]` is the parse-only ceiling: every line parsed
//! into the parser's own document type and nothing else (`scripts/bench-all.sh` runs both).
//!
//! The mix follows what a busy cluster writes: mostly get/list/watch by controllers and nodes,
//! some create/update/patch with request objects of 0.5–2 KB, a few deletes, and a rare sprinkle
//! (about 1 in 5,000) of attack-shaped events (exec into pods, privileged or host-network pods,
//! NodePort services, bindings to cluster-admin, secret reads by anonymous users) so rules fire.

// The same allocator as the `ruleatlas` binary, so the parse-only ceiling is measured under
// the same conditions as the hunts.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod structural;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a raw audit.k8s.io NDJSON log.
    GenAudit {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long)]
        out: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write Elastic-style ECS documents instead of raw audit events.
        #[arg(long)]
        ecs: bool,
    },
    /// Parse-only pass over an NDJSON file (the ceiling for a hunt): read the lines, parse each
    /// into the parser's own document type, count the objects; prints events/s and MB/s.
    Parse {
        file: String,
        #[arg(long, value_enum, default_value_t = JsonParser::SerdeJson)]
        parser: JsonParser,
        /// Parsing threads; the file is read in blocks cut at line ends on the calling thread.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum JsonParser {
    #[value(name = "serde_json")]
    SerdeJson,
    #[value(name = "sonic-rs")]
    SonicRs,
    /// sonic-rs's parser building serde_json's document type (what `hunt` does).
    #[value(name = "sonic-rs-serde")]
    SonicRsSerde,
    /// sonic-rs's lazy object iterator: every top-level value skipped (validated, not built).
    #[value(name = "sonic-rs-lazy")]
    SonicRsLazy,
    /// Not a parser: simdjson's first stage alone — every structural character outside strings
    /// found, 64 bytes at a time, and counted; nothing validated or built. The cost a
    /// structural-index parse pays before its walk (`docs/hunt.md`, "The next factor of two",
    /// step 0). A line counts as an object when its first structural is `{`.
    #[value(name = "structural-index")]
    StructuralIndex,
    /// simd-json 0.19's tape (its SIMD code chosen at run time: AVX2 where the CPU has it),
    /// buffers and tape reused from line to line; the line copied first (simd-json unescapes in
    /// place).
    #[value(name = "simd-json-tape")]
    SimdJsonTape,
    /// simd-json 0.19's borrowed document (`BorrowedValue`), buffers reused.
    #[value(name = "simd-json")]
    SimdJson,
    /// Not a parser: the structural index of `structural-index` and a walk of it that validates
    /// the grammar, every scalar and escape, building nothing (`structural.rs`): the floor of a
    /// simdjson-shaped projected parse that keeps nothing.
    #[value(name = "structural-validate")]
    StructuralValidate,
}

impl JsonParser {
    fn name(self) -> &'static str {
        match self {
            JsonParser::SerdeJson => "serde_json",
            JsonParser::SonicRs => "sonic-rs",
            JsonParser::SonicRsSerde => "sonic-rs-serde",
            JsonParser::SonicRsLazy => "sonic-rs-lazy",
            JsonParser::StructuralIndex => "structural-index",
            JsonParser::SimdJsonTape => "simd-json-tape",
            JsonParser::SimdJson => "simd-json",
            JsonParser::StructuralValidate => "structural-validate",
        }
    }
}

/// xorshift64*: deterministic and dependency-free; quality is ample for picking mixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "monitoring",
    "payments",
    "web",
    "data",
    "ci",
    "ingress-nginx",
];
const RESOURCES: &[(&str, &str, &str)] = &[
    ("pods", "", "v1"),
    ("pods", "", "v1"),
    ("pods", "", "v1"),
    ("configmaps", "", "v1"),
    ("secrets", "", "v1"),
    ("services", "", "v1"),
    ("endpoints", "", "v1"),
    ("events", "", "v1"),
    ("nodes", "", "v1"),
    ("leases", "coordination.k8s.io", "v1"),
    ("leases", "coordination.k8s.io", "v1"),
    ("deployments", "apps", "v1"),
    ("replicasets", "apps", "v1"),
    ("daemonsets", "apps", "v1"),
    ("jobs", "batch", "v1"),
    ("serviceaccounts", "", "v1"),
    ("roles", "rbac.authorization.k8s.io", "v1"),
    ("rolebindings", "rbac.authorization.k8s.io", "v1"),
    ("endpointslices", "discovery.k8s.io", "v1"),
];
const USERS: &[(&str, &[&str], &str)] = &[
    (
        "system:kube-controller-manager",
        &["system:authenticated"],
        "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election",
    ),
    (
        "system:kube-scheduler",
        &["system:authenticated"],
        "kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/scheduler",
    ),
    (
        "system:node:worker-1",
        &["system:nodes", "system:authenticated"],
        "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
    ),
    (
        "system:node:worker-2",
        &["system:nodes", "system:authenticated"],
        "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350",
    ),
    (
        "system:serviceaccount:kube-system:coredns",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
        ],
        "coredns/v1.11.1 (linux/amd64) kubernetes/$Format",
    ),
    (
        "system:serviceaccount:monitoring:prometheus",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:monitoring",
            "system:authenticated",
        ],
        "Prometheus/2.53.0",
    ),
    (
        "system:serviceaccount:ci:deployer",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated",
        ],
        "argocd-application-controller/v2.11.3",
    ),
    (
        "alice@example.com",
        &["developers", "system:authenticated"],
        "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
    ),
    (
        "bob@example.com",
        &["sre", "system:authenticated"],
        "kubectl/v1.29.4 (darwin/arm64) kubernetes/55cd5b1",
    ),
];
const IMAGES: &[&str] = &[
    "registry.example.com/payments/api:1.42.0",
    "nginx:1.27.0",
    "ghcr.io/example/web-frontend:2024.06.1",
    "quay.io/prometheus/node-exporter:v1.8.1",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "postgres:16.3",
];

fn uid(rng: &mut Rng) -> String {
    let a = rng.next();
    let b = rng.next();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn timestamp(ms: i64) -> String {
    // Civil-from-days (Howard Hinnant), so the generator needs no date crate.
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}000Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn labels(rng: &mut Rng, app: &str) -> Value {
    json!({"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop", "pod-template-hash": format!("{:x}", rng.next() & 0xffffff), "team": *rng.pick(&["payments","web","data","platform"])})
}

fn pod_spec(rng: &mut Rng, name: &str, privileged: bool, host_network: bool) -> Value {
    let n = 1 + rng.below(3);
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": format!("{name}-{i}"),
                "image": *rng.pick(IMAGES),
                "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "eu-west-1"}],
                "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                "securityContext": {"privileged": privileged, "allowPrivilegeEscalation": privileged, "readOnlyRootFilesystem": !privileged},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
            })
        })
        .collect();
    let mut volumes =
        vec![json!({"name": "config", "configMap": {"name": format!("{name}-config")}})];
    if privileged {
        volumes.push(json!({"name": "host", "hostPath": {"path": "/", "type": ""}}));
    }
    json!({"containers": containers, "volumes": volumes, "hostNetwork": host_network, "serviceAccountName": "default", "restartPolicy": "Always", "nodeSelector": {"kubernetes.io/os": "linux"}})
}

fn request_object(rng: &mut Rng, resource: &str, name: &str, ns: &str) -> Option<Value> {
    let meta = json!({"name": name, "namespace": ns, "labels": labels(rng, name), "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}});
    Some(match resource {
        "pods" => {
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": pod_spec(rng, name, false, false)})
        }
        "deployments" | "daemonsets" | "replicasets" => {
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta, "spec": {"replicas": 1 + rng.below(5), "selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": pod_spec(rng, name, false, false)}}})
        }
        "configmaps" => {
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta, "data": {"app.yaml": "server:\n  port: 8080\n  timeout: 30s\nfeatures:\n  checkout: true\n  search: true\n".repeat(1 + rng.below(6) as usize)}})
        }
        "services" => {
            json!({"kind": "Service", "apiVersion": "v1", "metadata": meta, "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
        }
        "secrets" => {
            json!({"kind": "Secret", "apiVersion": "v1", "metadata": meta, "type": "Opaque"})
        }
        "leases" => {
            json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": meta, "spec": {"holderIdentity": format!("{name}_{}", uid(rng)), "leaseDurationSeconds": 15, "renewTime": "2026-11-01T10:00:00.000000Z"}})
        }
        _ => return None,
    })
}

struct Generated {
    verb: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    group: &'static str,
    version: &'static str,
    request_object: Option<Value>,
    user: usize,
}

/// An attack-shaped event (rare), overriding the normal mix.
fn attack(rng: &mut Rng, name: &str, ns: &str) -> Generated {
    let base = |verb, resource, sub, group, ro| Generated {
        verb,
        resource,
        subresource: sub,
        group,
        version: "v1",
        request_object: ro,
        user: 7,
    };
    match rng.below(6) {
        0 => base("create", "pods", Some("exec"), "", None),
        1 => base(
            "create",
            "pods",
            None,
            "",
            Some(
                json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":name,"namespace":ns},"spec":pod_spec(rng, name, true, true)}),
            ),
        ),
        2 => base(
            "create",
            "services",
            None,
            "",
            Some(
                json!({"kind":"Service","apiVersion":"v1","metadata":{"name":name,"namespace":ns},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}),
            ),
        ),
        3 => base(
            "create",
            "clusterrolebindings",
            None,
            "rbac.authorization.k8s.io",
            Some(
                json!({"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":name},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","name":"default","namespace":ns}]}),
            ),
        ),
        4 => base("list", "secrets", None, "", None),
        _ => base("delete", "events", None, "", None),
    }
}

fn generate(rng: &mut Rng, i: u64, ms: i64) -> Value {
    let ns = *rng.pick(NAMESPACES);
    let name = format!(
        "{}-{:x}",
        rng.pick(&["api", "web", "worker", "db", "cache", "frontend"]),
        rng.below(4096)
    );
    let g = if rng.chance(5_000) {
        attack(rng, &name, ns)
    } else {
        let &(resource, group, version) = rng.pick(RESOURCES);
        let roll = rng.below(100);
        let verb = match roll {
            0..=44 => "get",
            45..=64 => "list",
            65..=74 => "watch",
            75..=81 => "update",
            82..=89 => "patch",
            90..=96 => "create",
            _ => "delete",
        };
        let request_object = if matches!(verb, "create" | "update" | "patch") {
            request_object(rng, resource, &name, ns)
        } else {
            None
        };
        let subresource = if resource == "pods" && verb == "update" && rng.chance(3) {
            Some("status")
        } else {
            None
        };
        Generated {
            verb,
            resource,
            subresource,
            group,
            version,
            request_object,
            user: rng.below(USERS.len() as u64) as usize,
        }
    };
    let (username, groups, ua) = USERS[g.user];
    let prefix = if g.group.is_empty() {
        format!("/api/{}", g.version)
    } else {
        format!("/apis/{}/{}", g.group, g.version)
    };
    let named = !matches!(g.verb, "list" | "watch" | "create");
    let mut uri = format!("{prefix}/namespaces/{ns}/{}", g.resource);
    if named || g.subresource.is_some() {
        uri.push('/');
        uri.push_str(&name);
    }
    if let Some(s) = g.subresource {
        uri.push('/');
        uri.push_str(s);
        if s == "exec" {
            uri.push_str("?command=sh&container=app&stdin=true&stdout=true&tty=true");
        }
    }
    let code = if rng.chance(50) {
        403
    } else if g.verb == "create" {
        201
    } else {
        200
    };
    let mut object_ref = json!({"resource": g.resource, "namespace": ns, "apiGroup": g.group, "apiVersion": g.version});
    if named || g.subresource.is_some() || g.verb == "create" {
        object_ref["name"] = json!(name);
    }
    if let Some(s) = g.subresource {
        object_ref["subresource"] = json!(s);
    }
    let level = if g.request_object.is_some() {
        "Request"
    } else {
        "Metadata"
    };
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": uid(rng),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": g.verb,
        "user": {"username": username, "uid": format!("{:x}", i % 97), "groups": groups},
        "sourceIPs": [format!("10.{}.{}.{}", rng.below(4), rng.below(256), 1 + rng.below(254))],
        "userAgent": ua,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": timestamp(ms),
        "stageTimestamp": timestamp(ms + 3),
        "annotations": {
            "authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" },
            "authorization.k8s.io/reason": if code == 403 { "" } else { "RBAC: allowed by ClusterRoleBinding \"system:controller\" of ClusterRole \"system:controller\" to User" },
        },
    });
    if let Some(ro) = g.request_object {
        ev["requestObject"] = ro;
    }
    ev
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::GenAudit {
            events,
            out,
            seed,
            ecs,
        } => {
            let file = std::fs::File::create(&out).with_context(|| format!("creating {out}"))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let mut rng = Rng(seed.max(1));
            let mut ms: i64 = 1_793_500_000_000;
            let mut bytes = 0u64;
            for i in 0..events {
                ms += rng.below(3) as i64;
                let ev = generate(&mut rng, i, ms);
                let doc = if ecs { to_ecs(ev) } else { ev };
                let line = serde_json::to_string(&doc)?;
                bytes += line.len() as u64 + 1;
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            eprintln!(
                "wrote {events} events, {bytes} bytes ({:.0} B/event) to {out}",
                bytes as f64 / events.max(1) as f64
            );
        }
        Cmd::Parse {
            file,
            parser,
            threads,
        } => {
            let started = Instant::now();
            let input = std::fs::File::open(&file).with_context(|| format!("opening {file}"))?;
            let counts = parse_stream(input, parser, threads.max(1))
                .with_context(|| format!("reading {file}"))?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            println!(
                "parse {}: {} threads, {} lines, {} objects, {} bad, {} bytes in {:.2} s: {:.0} events/s, {:.1} MB/s",
                parser.name(),
                threads.max(1),
                counts.lines,
                counts.objects,
                counts.bad,
                counts.bytes,
                secs,
                counts.objects as f64 / secs,
                counts.bytes as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Counts {
    /// Non-blank lines.
    lines: u64,
    /// Lines that parsed to a JSON object.
    objects: u64,
    /// Lines that did not parse.
    bad: u64,
    bytes: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.lines += o.lines;
        self.objects += o.objects;
        self.bad += o.bad;
        self.bytes += o.bytes;
    }
}

/// Parses every line of a block holding whole lines; `bytes` is the block's length.
fn parse_block(parser: JsonParser, block: &[u8]) -> Counts {
    use sonic_rs::JsonValueTrait;
    let mut c = Counts {
        bytes: block.len() as u64,
        ..Counts::default()
    };
    let mut start = 0;
    let mut simd_buffers = simd_json::Buffers::new(2048);
    let mut simd_tape = simd_json::Tape::null();
    let mut copy: Vec<u8> = Vec::with_capacity(4096);
    let mut structural = structural::Structural::default();
    let ends = memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len()));
    for end in ends {
        let line = &block[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        c.lines += 1;
        let object = match parser {
            JsonParser::SerdeJson => serde_json::from_slice::<Value>(line)
                .ok()
                .map(|v| v.is_object()),
            JsonParser::SonicRs => sonic_rs::from_slice::<sonic_rs::Value>(line)
                .ok()
                .map(|v| v.is_object()),
            JsonParser::SonicRsSerde => sonic_rs::from_slice::<Value>(line)
                .ok()
                .map(|v| v.is_object()),
            JsonParser::SonicRsLazy => {
                let mut ok = true;
                for entry in sonic_rs::to_object_iter(line) {
                    if entry.is_err() {
                        ok = false;
                        break;
                    }
                }
                ok.then_some(true)
            }
            JsonParser::StructuralIndex => {
                structural_index(line).map(|(_, first)| first == Some(b'{'))
            }
            JsonParser::SimdJsonTape => {
                copy.clear();
                copy.extend_from_slice(line);
                let mut tape = std::mem::replace(&mut simd_tape, simd_json::Tape::null()).reset();
                let object = simd_json::fill_tape(&mut copy, &mut simd_buffers, &mut tape)
                    .ok()
                    .map(|()| matches!(tape.0.first(), Some(simd_json::Node::Object { .. })));
                simd_tape = tape.reset();
                object
            }
            JsonParser::SimdJson => {
                use simd_json::prelude::ValueAsObject;
                copy.clear();
                copy.extend_from_slice(line);
                simd_json::to_borrowed_value_with_buffers(&mut copy, &mut simd_buffers)
                    .ok()
                    .map(|v| v.as_object().is_some())
            }
            JsonParser::StructuralValidate => structural.validate(line),
        };
        match object {
            Some(true) => c.objects += 1,
            Some(false) => {}
            None => c.bad += 1,
        }
    }
    c
}

/// simdjson's first stage over one text: the structural characters outside strings (`{}[]:,`)
/// and the opening quote of every string, found 64 bytes at a time (four 16-byte compares per
/// character class, escapes and string interiors resolved with word arithmetic). Their number
/// and the first of them; `None` when the text ends inside a string.
fn structural_index(text: &[u8]) -> Option<(u64, Option<u8>)> {
    let mut stage = structural::Stage1::default();
    let (mut count, mut first) = (0u64, None);
    stage.for_each_block(text, |base, m| {
        let found = m.op_outside | (m.quote & m.strings);
        count += u64::from(found.count_ones());
        if first.is_none() && found != 0 {
            first = text
                .get(base as usize + found.trailing_zeros() as usize)
                .copied();
        }
    });
    stage.ended_outside_strings().then_some((count, first))
}

const BLOCK: usize = 4 << 20;

/// Reads `input` in blocks of whole lines (a line longer than a block grows the block) and hands
/// each to `sink`.
fn for_each_block(mut input: impl Read, mut sink: impl FnMut(Vec<u8>)) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = std::mem::take(&mut carry);
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let mut filled = start;
        while filled < buf.len() {
            match input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let eof = filled < buf.len();
        buf.truncate(filled);
        if eof {
            if !buf.is_empty() {
                sink(buf);
            }
            return Ok(());
        }
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                carry = buf[i + 1..].to_vec();
                buf.truncate(i + 1);
                sink(buf);
            }
            None => carry = buf,
        }
    }
}

fn parse_stream(input: impl Read, parser: JsonParser, threads: usize) -> anyhow::Result<Counts> {
    let mut total = Counts::default();
    if threads <= 1 {
        for_each_block(input, |block| total.add(&parse_block(parser, &block)))?;
        return Ok(total);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut c = Counts::default();
                    loop {
                        let block = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => break,
                        };
                        match block {
                            Ok(b) => c.add(&parse_block(parser, &b)),
                            Err(_) => break,
                        }
                    }
                    c
                })
            })
            .collect();
        let read = for_each_block(input, |block| {
            // A send fails only when every worker is gone, which the joins below report.
            let _ = tx.send(block);
        });
        drop(tx);
        for w in workers {
            match w.join() {
                Ok(c) => total.add(&c),
                Err(_) => anyhow::bail!("a parsing thread panicked"),
            }
        }
        read?;
        Ok(())
    })?;
    Ok(total)
}

/// A minimal ECS wrapping, for benchmarks of ECS input (the product's normaliser is richer).
fn to_ecs(ev: Value) -> Value {
    let ts = ev
        .get("requestReceivedTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    let verb = ev.get("verb").cloned().unwrap_or(Value::Null);
    json!({"@timestamp": ts, "event": {"dataset": "kubernetes.audit_logs", "action": verb}, "data_stream": {"dataset": "kubernetes.audit_logs"}, "kubernetes": {"audit": ev}})
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &[u8] = b"{\"a\":1}\n\n[1,2]\r\n{broken\n{\"b\":{\"c\":\"d\"}}";

    /// The structural characters of `text` found one byte at a time.
    fn structural_bytes(text: &[u8]) -> Option<(u64, Option<u8>)> {
        let (mut inside, mut escaped) = (false, false);
        let (mut count, mut first) = (0u64, None);
        for &b in text {
            let structural = if inside {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => inside = false,
                    _ => {}
                }
                false
            } else if b == b'"' {
                inside = true;
                true
            } else {
                b"{}[]:,".contains(&b)
            };
            if structural {
                count += 1;
                first.get_or_insert(b);
            }
        }
        (!inside).then_some((count, first))
    }

    #[test]
    fn structural_index_agrees_with_a_byte_by_byte_scan() {
        let mut texts: Vec<Vec<u8>> = [
            r#"{"a":1,"b":[true,null,{"c":"d"}]}"#,
            r#"{"k\"ey":"v\\","x":"\\\"","y":"{[,:]}"}"#,
            r#"  [ "unterminated"#,
            "",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        // Strings and runs of backslashes across every 64-byte boundary.
        for pad in 0..70 {
            for run in 0..5 {
                let mut t = format!("{{\"{}", "p".repeat(pad));
                t.push_str(&"\\".repeat(run));
                t.push_str("\"\":[1,\"x,y\"],\"z\":{}}");
                texts.push(t.into_bytes());
            }
        }
        for t in &texts {
            assert_eq!(
                structural_index(t),
                structural_bytes(t),
                "{}",
                String::from_utf8_lossy(t)
            );
        }
    }

    #[test]
    fn both_parsers_count_objects_and_bad_lines() {
        for parser in [JsonParser::SerdeJson, JsonParser::SonicRs] {
            let c = parse_block(parser, INPUT);
            assert_eq!(
                c,
                Counts {
                    lines: 4,
                    objects: 2,
                    bad: 1,
                    bytes: INPUT.len() as u64
                },
                "{parser:?}"
            );
        }
    }

    #[test]
    fn blocks_end_at_line_ends_and_threads_agree() {
        let mut doc = Vec::new();
        for i in 0..50_000 {
            doc.extend_from_slice(
                format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300)).as_bytes(),
            );
        }
        doc.extend_from_slice(b"not json\n{\"last\":true}");
        let mut blocks = 0;
        for_each_block(&doc[..], |b| {
            blocks += 1;
            assert!(b.ends_with(b"\n") || b.ends_with(b"}"));
        })
        .expect("in-memory read");
        assert!(blocks > 1, "the test input spans several blocks");
        for parser in [JsonParser::SerdeJson, JsonParser::SonicRs] {
            let one = parse_stream(&doc[..], parser, 1).expect("one thread");
            let three = parse_stream(&doc[..], parser, 3).expect("three threads");
            assert_eq!(one, three);
            assert_eq!(one.objects, 50_001);
            assert_eq!(one.bad, 1);
            assert_eq!(one.bytes, doc.len() as u64);
        }
    }
}
