//! The shared Kubernetes samples (Panther's rule tests, Elastic's pipeline tests) through the
//! reader: how many events each file yields, and that the wrapped ones become audit Events.

use ruleatlas_event::{read_events, EventOptions, SourceKind};

#[test]
fn shared_k8s_samples_unwrap() {
    let Some(data) = ruleatlas_corpus::data_dir("k8s wrapper samples") else {
        return;
    };
    let samples = data.join("samples");
    // (file, events expected, of them audit Events, all unwrapped: no wrapper left). Panther's
    // hand-made audit Events mostly lack apiVersion, auditID and stage: recognised by their
    // verb. Six of the GCP entries are not Kubernetes (compute, deployment manager).
    let files: &[(&str, usize, usize, bool)] = &[
        (
            "panther-analysis-k8s/k8s_audit_events.jsonl",
            184,
            184,
            true,
        ),
        (
            "panther-analysis-k8s/aks_diagnostic_kube_audit.jsonl",
            34,
            34,
            true,
        ),
        (
            "panther-analysis-k8s/gcp_cloud_audit_k8s.jsonl",
            57,
            51,
            true,
        ),
        // Records around Panther's test logs: not a wrapper shape, read as they are.
        (
            "panther-analysis-k8s/panther_k8s_rule_tests.jsonl",
            287,
            0,
            false,
        ),
        ("elastic-integrations-k8s-audit/test-audit.log", 5, 5, true),
        (
            "elastic-integrations-k8s-audit/test-kube-audit.log",
            1,
            1,
            true,
        ),
    ];
    for (file, want, want_audit, unwrapped) in files {
        let path = samples.join(file);
        if !path.is_file() {
            eprintln!("{file}: missing, skipped");
            continue;
        }
        let p = path.display().to_string();
        let stream = read_events(&p, &EventOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let (mut events, mut audit, mut bad, mut timed, mut wrapped) = (0usize, 0, 0, 0, 0);
        for item in stream {
            match item {
                Ok(ev) => {
                    events += 1;
                    if ev.kind == SourceKind::KubernetesAudit {
                        audit += 1;
                    }
                    if ev.ts_ms.is_some() {
                        timed += 1;
                    }
                    // A GKE Kubernetes entry or an AKS record left as it was (other GCP audit
                    // entries, compute or deployment manager, stay as they are on purpose).
                    let gke = ev
                        .doc
                        .pointer("/protoPayload/methodName")
                        .and_then(|m| m.as_str())
                        .is_some_and(|m| m.starts_with("io.k8s."));
                    if gke || ev.doc.pointer("/properties/log").is_some() {
                        wrapped += 1;
                    }
                    assert!(ev.origin.line >= 1, "{file}: event without a line");
                }
                Err(b) => {
                    bad += 1;
                    eprintln!("{b}");
                }
            }
        }
        println!(
            "{file}: {events} events ({audit} recognised as audit Events, {timed} with a time, \
             {wrapped} still wrapped), {bad} bad"
        );
        assert_eq!(bad, 0, "{file}");
        assert_eq!(events, *want, "{file}");
        assert_eq!(audit, *want_audit, "{file}: audit Events");
        if *unwrapped {
            assert_eq!(wrapped, 0, "{file}");
        }
    }
}
