//! The one-pass projected parse ([`Projection::parse_direct`]) against sonic-rs's path on every
//! line of the shared log samples (and every file as one text): where it takes a text, the text
//! is valid and the document the same as through sonic-rs's document.

use ruleatlas_event::projection::Projection;
use ruleatlas_ir::FieldPath;
use std::path::Path;

fn projections() -> Vec<Projection> {
    // Everything; what Kubernetes rules read; what CloudTrail rules read (with a dotted key).
    let sets: [&[&str]; 3] = [
        &[""],
        &[
            "verb",
            "objectRef.resource",
            "objectRef.subresource",
            "objectRef.namespace",
            "user.username",
            "user.groups",
            "requestObject.spec.containers.securityContext.privileged",
            "requestObject.spec.hostNetwork",
            "requestObject.rules",
            "responseStatus.code",
            "annotations.authorization.k8s.io/decision",
            "sourceIPs",
            "kind",
            "apiVersion",
            "stageTimestamp",
        ],
        &[
            "eventSource",
            "eventName",
            "userIdentity.type",
            "userIdentity.arn",
            "requestParameters",
            "errorCode",
            "Records",
        ],
    ];
    sets.iter()
        .map(|fields| {
            let mut p = Projection::new();
            for f in *fields {
                assert!(p.add_field(&FieldPath::new(*f)));
            }
            p
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn direct_parse_agrees_with_sonic_rs_on_the_samples() {
    let Some(data) = ruleatlas_corpus::data_dir("direct parse") else {
        return;
    };
    let mut paths = Vec::new();
    files(&data.join("samples"), &mut paths);
    paths.sort();
    let (mut texts, mut taken, mut objects) = (0usize, 0usize, 0usize);
    for p in projections() {
        for path in &paths {
            let Ok(body) = std::fs::read_to_string(path) else {
                continue;
            };
            for text in std::iter::once(body.as_str()).chain(body.lines()) {
                texts += 1;
                let is_object = sonic_rs::from_str::<sonic_rs::Value>(text)
                    .is_ok_and(|v| sonic_rs::JsonValueTrait::is_object(&v));
                objects += usize::from(is_object);
                if let Some(doc) = p.parse_direct(text) {
                    taken += 1;
                    let via_sonic = p.parse(text).unwrap_or_else(|e| {
                        panic!("{}: taken, but sonic-rs says {e}: {text}", path.display())
                    });
                    assert_eq!(doc, via_sonic, "{}: {text}", path.display());
                }
            }
        }
    }
    println!(
        "direct parse on the samples: {taken} of {texts} texts taken ({objects} are JSON objects; files with a newline are declined as a whole), all as through sonic-rs"
    );
    assert!(taken > 1000, "taken {taken}");
}
