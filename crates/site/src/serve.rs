//! `ruleatlas serve`: a static file server for a built atlas, with the headers a static host
//! should send: correct content types, revalidation for pages and data (they change on every
//! build), a short cache for style and scripts, and a Content-Security-Policy that forbids inline
//! and foreign scripts — a second wall behind the escaping, should a rule ever slip through.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tower_http::services::ServeDir;

/// The policy every page also carries in a `<meta>` tag (for `file://` and plain hosts).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn cache_control(path: &str) -> &'static str {
    if path.starts_with("/assets/") && !path.ends_with("search-index.js") {
        "public, max-age=300"
    } else {
        "no-cache"
    }
}

async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Pages, style and scripts are written as UTF-8; say so instead of leaving it to sniffing.
    let charset = match h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some("text/html") => Some("text/html; charset=utf-8"),
        Some("text/css") => Some("text/css; charset=utf-8"),
        Some("text/javascript") => Some("text/javascript; charset=utf-8"),
        _ => None,
    };
    if let Some(ct) = charset {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control(&path)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The router serving `dir` (exposed for tests).
pub fn router(dir: &Path) -> Router {
    let files = ServeDir::new(dir).append_index_html_on_directories(true);
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(headers))
}

/// Serves `dir` on `addr` until Ctrl-C. `on_ready` gets the bound address (port 0 picks one).
pub async fn serve(
    dir: PathBuf,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    if !dir.join("index.html").is_file() {
        anyhow::bail!(
            "{} holds no built atlas (no index.html); run `ruleatlas build` first",
            dir.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    on_ready(listener.local_addr()?);
    axum::serve(listener, router(&dir))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Blocking wrapper for the CLI.
pub fn run(
    dir: PathBuf,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(dir, addr, on_ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_rules() {
        assert_eq!(cache_control("/assets/site.css"), "public, max-age=300");
        assert_eq!(cache_control("/assets/search-index.js"), "no-cache");
        assert_eq!(cache_control("/rules/elastic/x/"), "no-cache");
    }

    #[test]
    fn serves_pages_with_types_and_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("search")).unwrap();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><p>home").unwrap();
        std::fs::write(
            dir.path().join("search/index.html"),
            "<!doctype html><p>search",
        )
        .unwrap();
        std::fs::write(dir.path().join("assets/site.css"), "body{}").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = router(dir.path());
            tokio::spawn(async move { axum::serve(listener, app).await.ok() });
            let get = |path: &'static str| async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out.to_ascii_lowercase()
            };
            let page = get("/search/?q=nodeport").await;
            assert!(page.starts_with("http/1.1 200"), "{page}");
            assert!(
                page.contains("content-type: text/html; charset=utf-8"),
                "{page}"
            );
            assert!(page.contains("cache-control: no-cache"), "{page}");
            assert!(
                page.contains("content-security-policy: default-src 'self'"),
                "{page}"
            );
            assert!(page.contains("<p>search"), "{page}");
            let css = get("/assets/site.css").await;
            assert!(
                css.contains("content-type: text/css; charset=utf-8"),
                "{css}"
            );
            assert!(css.contains("max-age=300"), "{css}");
            let missing = get("/nope/").await;
            assert!(missing.starts_with("http/1.1 404"), "{missing}");
        });
    }
}
