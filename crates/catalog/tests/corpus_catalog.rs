//! The catalog generated from the real specs in `../shared/data/catalog-sources`, and the
//! committed snapshot checked against it.

use ruleatlas_catalog::{Catalog, SourceId};

fn specs() -> Option<std::path::PathBuf> {
    ruleatlas_corpus::data_dir("catalog").map(|d| d.join("catalog-sources"))
}

type Read = (
    ruleatlas_catalog::Facts,
    Option<ruleatlas_catalog::kubernetes::K8sProse>,
    Option<ruleatlas_catalog::cloudtrail::AwsProse>,
);

/// Reading 439 botocore models is the slow part: once per test binary.
fn read(dir: &std::path::Path) -> Result<&'static Read, String> {
    static READ: std::sync::OnceLock<Result<Read, String>> = std::sync::OnceLock::new();
    READ.get_or_init(|| ruleatlas_catalog::read_specs(dir).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// What `Catalog::from_specs` builds.
fn from_specs(dir: &std::path::Path) -> Result<Catalog, String> {
    let (f, k, a) = read(dir)?;
    Ok(Catalog::from_facts(f, k.as_ref(), a.as_ref()))
}

#[test]
fn kubernetes_catalog_from_swagger() {
    let Some(dir) = specs() else { return };
    let catalog = from_specs(&dir);
    assert!(catalog.is_ok(), "{catalog:?}");
    let Ok(catalog) = catalog else { return };
    let Some(k8s) = catalog.source(SourceId::KubernetesAudit) else {
        panic!("no kubernetes source")
    };
    let pairs: usize = k8s.groups.iter().map(|g| g.api_groups.len()).sum();
    let (groups, real, synth) = k8s.counts();
    println!(
        "kubernetes {}: {pairs} (apiGroup, resource) pairs, {groups} resources, {real} operations + {synth} any-*",
        k8s.provenance.spec
    );
    assert_eq!(pairs, 76);
    assert_eq!(real, 687);
    assert_eq!(synth, 75);
    let services = k8s.group("services").map(|g| {
        g.operations
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>()
    });
    let Some(services) = services else {
        panic!("no services group")
    };
    for v in [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        assert!(
            services.contains(&format!("{v}-services").as_str()),
            "{v}-services"
        );
    }
    for id in [
        "get-services-proxy",
        "create-services-proxy",
        "delete-services-proxy",
        "get-services-status",
        "patch-services-status",
        "update-services-status",
        "any-services",
    ] {
        assert!(services.contains(&id), "{id}");
    }
    for id in [
        "get-pods-exec",
        "create-pods-exec",
        "create-pods-attach",
        "get-pods-portforward",
    ] {
        assert!(k8s.operation(id).is_some(), "{id}");
    }
    let undocumented: Vec<&str> = k8s
        .operations()
        .filter(|o| o.description.trim().is_empty())
        .map(|o| o.id.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "without description: {undocumented:?}"
    );
    let events = k8s.group("events").map(|g| g.api_groups.len());
    assert_eq!(
        events,
        Some(2),
        "events is served by core and events.k8s.io"
    );
    println!("kubernetes audit fields: {}", k8s.fields.len());
    assert!(k8s
        .fields
        .iter()
        .any(|f| f.path == "objectRef.resource" && !f.description.is_empty()));
}

#[test]
fn cloudtrail_catalog_from_botocore() {
    let Some(dir) = specs() else { return };
    let Ok(catalog) = from_specs(&dir) else {
        panic!("catalog from specs failed")
    };
    let Some(ct) = catalog.source(SourceId::AwsCloudTrail) else {
        panic!("no cloudtrail source")
    };
    let (groups, real, synth) = ct.counts();
    let ops_total: usize = ct
        .groups
        .iter()
        .map(|g| g.operations.iter().filter(|o| !o.synthetic).count())
        .sum();
    let sources: std::collections::BTreeSet<_> = ct
        .groups
        .iter()
        .filter_map(|g| g.event_source.clone())
        .collect();
    println!(
        "cloudtrail {}: {groups} services, {} event sources, {ops_total} operations ({real} distinct ids) + {synth} catch-alls",
        ct.provenance.spec,
        sources.len()
    );
    assert!(groups >= 439);
    assert!((19_500..=20_500).contains(&ops_total), "{ops_total}");
    for n in [
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "PutEventSelectors",
    ] {
        let id = format!("cloudtrail.amazonaws.com:{n}");
        let op = ct.operation(&id);
        assert!(op.is_some(), "{id}");
        assert!(op.is_some_and(|o| !o.description.is_empty() && !o.description.contains('<')));
    }
    assert!(ct
        .operation("cloudtrail.amazonaws.com:_catch_all")
        .is_some());
    assert!(ct
        .operation("lambda.amazonaws.com:CreateFunction20150331")
        .is_some());
    assert!(ct
        .operation("monitoring.amazonaws.com:PutMetricAlarm")
        .is_some());
    assert!(ct
        .operation("servicecatalog-appregistry.amazonaws.com:CreateApplication")
        .is_some());
    let no_desc = ct.operations().filter(|o| o.description.is_empty()).count();
    assert_eq!(no_desc, 0);
}

/// The committed snapshot must be what `ruleatlas catalog generate` writes from these specs.
#[test]
fn snapshot_is_up_to_date() {
    let Some(dir) = specs() else { return };
    // What `ruleatlas_catalog::generate_snapshot` writes.
    let generated =
        read(&dir).and_then(|(f, _, _)| f.to_snapshot_text().map_err(|e| e.to_string()));
    let Ok(generated) = generated else {
        panic!("{generated:?}")
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/catalog-snapshot.json");
    // Same as `ruleatlas catalog generate`, for when the CLI cannot be built.
    if std::env::var_os("RULEATLAS_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, &generated) {
            panic!("{}: {e}", path.display());
        }
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "crates/catalog/data/catalog-snapshot.json is stale: run `ruleatlas catalog generate --specs ../shared/data/catalog-sources --out crates/catalog/data/catalog-snapshot.json`"
    );
    let Ok(snap) = Catalog::snapshot() else {
        panic!("snapshot does not load")
    };
    let Ok(full) = from_specs(&dir) else {
        panic!("specs do not load")
    };
    for id in SourceId::ALL {
        let (a, b) = (snap.source(id), full.source(id));
        let ids = |s: Option<&ruleatlas_catalog::LogSource>| -> Vec<String> {
            s.map(|s| s.operations().map(|o| o.id.clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            ids(a),
            ids(b),
            "{id}: same operations from snapshot and specs"
        );
        assert_eq!(a.map(|s| s.provenance.from.as_str()), Some("snapshot"));
    }
}
