//! HTTPS and mutual TLS: a client certificate signed by `--client-ca` authenticates; no
//! certificate gets 401 (or a token, when tokens are configured too); a certificate from another
//! CA never gets a batch accepted.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use ruleatlas_webhook::{start, Config, TlsFiles};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    Ca {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

fn leaf(ca: &Ca, names: &[&str], client: bool) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    (p.signed_by(&key, &ca.cert, &ca.key).unwrap(), key)
}

/// One HTTPS request with `Connection: close`; the status code, or the error.
fn post(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: Option<&(rcgen::Certificate, KeyPair)>,
    headers: &str,
    body: &[u8],
) -> Result<u16, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from(c.der().to_vec())],
                PrivateKeyDer::try_from(k.serialize_der()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    tls.write_all(body).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no response: {text:?}"))
}

fn write(dir: &Path, name: &str, text: String) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BODY: &[u8] = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"a","stage":"ResponseComplete","verb":"get"}]}"#;

#[test]
fn mutual_tls_and_tokens() {
    let dir = std::env::temp_dir().join(format!("ruleatlas-webhook-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca1 = ca("ruleatlas test ca");
    let other = ca("someone else");
    let (srv, srv_key) = leaf(&ca1, &["localhost", "127.0.0.1"], false);
    let good_client = leaf(&ca1, &["kube-apiserver"], true);
    let bad_client = leaf(&other, &["intruder"], true);
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), dir.join("spool"));
    c.output = Some(dir.join("alerts.ndjson"));
    c.tls = Some(TlsFiles {
        cert: write(&dir, "srv.crt", srv.pem()),
        key: write(&dir, "srv.key", srv_key.serialize_pem()),
        client_ca: Some(write(&dir, "ca.crt", ca1.cert.pem())),
    });
    c.tokens = Some(vec!["tok-123".into()]);
    c.shutdown_grace = Duration::from_secs(5);
    let h = start(c, Vec::new()).unwrap();

    assert_eq!(post(h.addr, &ca1, Some(&good_client), "", BODY), Ok(200));
    assert_eq!(post(h.addr, &ca1, None, "", BODY), Ok(401));
    assert_eq!(
        post(
            h.addr,
            &ca1,
            None,
            "Authorization: Bearer tok-123\r\n",
            BODY
        ),
        Ok(200)
    );
    assert_eq!(
        post(
            h.addr,
            &ca1,
            None,
            "Authorization: Bearer tok-124\r\n",
            BODY
        ),
        Ok(401)
    );
    let r = post(h.addr, &ca1, Some(&bad_client), "", BODY);
    assert!(
        r.is_err() || r == Ok(401),
        "untrusted client certificate got {r:?}"
    );
    assert_eq!(
        h.metrics
            .batches_accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_tls_material_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("ruleatlas-webhook-badtls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), dir.join("spool"));
    c.tls = Some(TlsFiles {
        cert: write(&dir, "srv.crt", "not a certificate".into()),
        key: dir.join("missing.key"),
        client_ca: None,
    });
    let err = start(c, Vec::new())
        .err()
        .expect("bad TLS files must fail")
        .to_string();
    assert!(err.contains("srv.crt"), "{err}");
    let mut c = Config::new("0.0.0.0:0".parse().unwrap(), dir.join("spool"));
    c.output = Some(dir.join("alerts.ndjson"));
    let err = start(c, Vec::new())
        .err()
        .expect("no auth on a public address must fail")
        .to_string();
    assert!(err.contains("without authentication"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
