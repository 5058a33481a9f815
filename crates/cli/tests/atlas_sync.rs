//! `build`, `serve` and `demo` read the sync cache when given no rules, and the atlas records the
//! lock: each rule page links to its upstream file at the synced commit and shows the commit and
//! its date; the home page lists each source's commit and date.
//!
//! No network: a local git repository stands in for github.com/SigmaHQ/sigma. The sources file
//! names the real GitHub URL (so the pages get real GitHub links) and git's `url.<base>.insteadOf`
//! (set through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`) rewrites it to the
//! local repository; `GIT_ALLOW_PROTOCOL=file` makes any fetch that escaped the rewrite fail
//! instead of reaching the network. The cache is chosen with `RULEATLAS_CACHE`, never the user's.

use ruleatlas_corpus::testkit::{self, git_with_env, write};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const UPSTREAM: &str = "https://github.com/SigmaHQ/sigma.git";
const WEB: &str = "https://github.com/SigmaHQ/sigma";
const EXEC_ID: &str = "11111111-2222-4333-8444-555555555555";
const EXEC: &str = "title: Exec Into Pod\nid: 11111111-2222-4333-8444-555555555555\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n  selection:\n    verb: create\n    objectRef.resource: pods\n    objectRef.subresource: exec\n  condition: selection\nlevel: medium\n";
const SECRETS: &str = "title: Secrets Listed\nid: 66666666-7777-4888-8999-000000000000\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n  selection:\n    verb: list\n    objectRef.resource: secrets\n  condition: selection\nlevel: low\n";

fn scratch(name: &str) -> PathBuf {
    testkit::scratch("atlas-sync", name)
}

/// Commits everything in `dir` with a fixed committer date; returns the commit id.
fn commit(dir: &Path, message: &str, date: &str) -> String {
    let env = [("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)];
    git_with_env(dir, &["add", "-A"], &env);
    git_with_env(dir, &["commit", "-q", "-m", message], &env);
    git_with_env(dir, &["rev-parse", "HEAD"], &env)
}

/// The stand-in upstream, its sources file and the cache folder.
struct Setup {
    base: PathBuf,
    upstream: PathBuf,
    sources: PathBuf,
    cache: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let base = scratch(name);
        let upstream = base.join("upstream");
        std::fs::create_dir_all(&upstream).unwrap();
        let out = Command::new("git")
            .arg("-C")
            .arg(&upstream)
            .args(["init", "-q", "-b", "main"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let sources = base.join("sources.toml");
        write(
            &base,
            "sources.toml",
            &format!(
                "[[rules]]\nname = \"sigma\"\nvendor = \"sigma\"\ngit = \"{UPSTREAM}\"\nfolders = [\"rules*\"]\n"
            ),
        );
        let cache = base.join("cache");
        Setup {
            base,
            upstream,
            sources,
            cache,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ruleatlas"));
        c.args(args)
            .current_dir(&self.base)
            .env("RULEATLAS_CACHE", &self.cache)
            .env("GIT_CONFIG_COUNT", "1")
            .env(
                "GIT_CONFIG_KEY_0",
                format!("url.file://{}.insteadOf", self.upstream.display()),
            )
            .env("GIT_CONFIG_VALUE_0", UPSTREAM)
            .env("GIT_ALLOW_PROTOCOL", "file");
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn sync(&self) {
        let (s, c) = (self.sources.to_str().unwrap(), self.cache.to_str().unwrap());
        let (code, out, err) = self.run(&["sync", "-q", "--sources", s, "--cache", c]);
        assert_eq!(code, 0, "{out}{err}");
    }

    /// The committer date the lock recorded (RFC 3339, as the pages show it).
    fn locked_date(&self) -> String {
        let text = std::fs::read_to_string(self.cache.join("ruleatlas.lock.json")).unwrap();
        let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
        lock["rules"][0]["commit_date"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Page text with the entities the templates write for `/` and `&` turned back, so hrefs can be
/// compared with plain URLs.
fn read_page(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn rule_page(site: &Path, id: &str) -> String {
    read_page(&site.join("rules/sigma").join(id).join("index.html"))
}

/// The rule page links to the file at `commit` and shows the commit and its date; the home page
/// lists the source with its upstream URL, commit and date.
fn assert_records(site: &Path, commit: &str, date: &str) {
    let page = rule_page(site, EXEC_ID);
    let link = format!("href=\"{WEB}/blob/{commit}/rules/cloud/kubernetes/exec.yml");
    assert!(page.contains(&link), "no {link} in the rule page");
    assert!(
        page.contains(&format!("<dd>{commit}</dd>")),
        "rule page: no commit"
    );
    assert!(
        page.contains(&format!("<dd>{date}</dd>")),
        "rule page: no date"
    );
    let home = read_page(&site.join("index.html"));
    let row = home
        .split("<tr>")
        .find(|row| row.contains("</span> sigma</td>"))
        .unwrap_or_else(|| panic!("no row for the sigma source on the home page"));
    assert!(row.contains(&format!("href=\"{WEB}\"")), "{row}");
    assert!(row.contains(&format!("<code>{commit}</code>")), "{row}");
    assert!(row.contains(&format!("<td>{date}</td>")), "{row}");
}

#[test]
fn build_reads_the_cache_and_records_the_lock() {
    let s = Setup::new("build");
    write(&s.upstream, "rules/cloud/kubernetes/exec.yml", EXEC);
    let first = commit(&s.upstream, "one", "2026-11-20T08:00:00+00:00");
    s.sync();
    let date = s.locked_date();
    assert!(date.starts_with("2026-11-20T08:00:00"), "{date}");

    // No --rules: the cache's rules, annotated with the lock.
    let site = s.base.join("site");
    let (code, out, err) = s.run(&[
        "build",
        "--out",
        site.to_str().unwrap(),
        "--date",
        "2026-12-01",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("rules from the sync cache"), "{err}");
    assert!(err.contains("loaded 1 rules"), "{err}");
    assert_records(&site, &first, &date);
    let catalog = std::fs::read_to_string(site.join("api/catalog.json")).unwrap();
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    assert_eq!(catalog["provenance"][0]["commit"], first.as_str());
    let rules = std::fs::read_to_string(site.join("api/rules.json")).unwrap();
    assert!(rules.contains(&first), "api/rules.json lacks the commit");

    // Upstream moves on: the next sync and build follow it.
    write(&s.upstream, "rules/cloud/kubernetes/secrets.yml", SECRETS);
    write(
        &s.upstream,
        "rules/cloud/kubernetes/exec.yml",
        &EXEC.replace("level: medium", "level: high"),
    );
    let second = commit(&s.upstream, "two", "2026-11-22T09:30:00+00:00");
    s.sync();
    let date2 = s.locked_date();
    assert!(date2.starts_with("2026-11-22T09:30:00"), "{date2}");
    let (code, out, err) = s.run(&["build", "--out", site.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("loaded 2 rules"), "{err}");
    assert_records(&site, &second, &date2);
    let secrets = rule_page(&site, "66666666-7777-4888-8999-000000000000");
    assert!(
        secrets.contains(&format!(
            "{WEB}/blob/{second}/rules/cloud/kubernetes/secrets.yml"
        )),
        "secrets rule page lacks its upstream link"
    );
    let home = read_page(&site.join("index.html"));
    assert!(!home.contains(&first), "the home page still names {first}");

    // --rules outside the cache: those rules, and no lock entry on the home page.
    let own = s.base.join("own");
    write(&own, "exec.yml", EXEC);
    let site2 = s.base.join("site2");
    let (code, out, err) = s.run(&[
        "build",
        "--rules",
        own.to_str().unwrap(),
        "--out",
        site2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("rules from the sync cache"), "{err}");
    let page = rule_page(&site2, EXEC_ID);
    assert!(
        !page.contains("/blob/"),
        "a local rule got an upstream link"
    );
    let home = read_page(&site2.join("index.html"));
    assert!(
        !home.contains(&second),
        "the home page names an unused source"
    );
}

#[test]
fn build_without_rules_or_cache_says_what_to_do() {
    let s = Setup::new("empty");
    let site = s.base.join("site");
    let (code, _, err) = s.run(&["build", "--out", site.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ruleatlas sync"), "{err}");
    assert!(!site.join("index.html").exists());
}

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response)
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[test]
fn serve_and_demo_read_the_cache() {
    let s = Setup::new("serve");
    write(&s.upstream, "rules/cloud/kubernetes/exec.yml", EXEC);
    let commit_id = commit(&s.upstream, "one", "2026-11-20T08:00:00+00:00");
    s.sync();
    let date = s.locked_date();

    // `serve` with neither --dir nor --rules builds from the cache into a temporary folder.
    let child = s
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "serving DIR at http://ADDR/"
    let (dir, url) = line
        .trim()
        .strip_prefix("serving ")
        .and_then(|l| l.rsplit_once(" at http://"))
        .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"));
    let addr = url.trim_end_matches('/').to_string();
    let served_dir = PathBuf::from(dir);
    let home = http_get(&addr, "/index.html");
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(
        home.contains(&format!("<code>{commit_id}</code>")),
        "{home}"
    );
    let page = http_get(&addr, &format!("/rules/sigma/{EXEC_ID}/index.html"));
    assert!(
        page.contains(&format!(
            "{WEB}/blob/{commit_id}/rules/cloud/kubernetes/exec.yml"
        )),
        "served rule page lacks the upstream link"
    );
    drop(server);
    if served_dir.starts_with(std::env::temp_dir()) {
        let _ = std::fs::remove_dir_all(&served_dir);
    }

    // `demo --synced`: atlas and hunt from the cache; alerts carry the commit.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let out = s.base.join("demo");
    let (code, stdout, err) = s.run(&[
        "demo",
        "--synced",
        "--no-serve",
        "--examples",
        examples.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert_records(&out.join("site"), &commit_id, &date);
    let alerts = std::fs::read_to_string(out.join("alerts.ndjson")).unwrap();
    let exec_alert = alerts
        .lines()
        .find(|l| l.contains(EXEC_ID))
        .unwrap_or_else(|| panic!("no alert of the synced rule:\n{alerts}"));
    assert!(
        exec_alert.contains(&format!("\"commit\":\"{commit_id}\"")),
        "{exec_alert}"
    );
}
