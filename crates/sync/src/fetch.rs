//! Downloads (through the system `curl`) and the reading of zip archives (wheels).
//!
//! Why `curl` rather than an HTTP crate: the same reasons as `git` (see `git.rs`) — the user's
//! proxy variables, `.netrc` and CA store apply, and no TLS stack is compiled into ruleatlas. curl
//! ships with Windows 10+, macOS and every Linux distribution that ships git's https transport.

use crate::progress::Progress;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Downloads `url` to `dest`, reporting the bytes received so far.
pub fn download(
    url: &str,
    dest: &Path,
    accept: Option<&str>,
    progress: &dyn Progress,
    label: &str,
) -> Result<(), String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "--fail",
        "--location",
        "--silent",
        "--show-error",
        "--retry",
        "2",
        "--connect-timeout",
        "30",
    ]);
    if let Some(a) = accept {
        cmd.arg("--header").arg(format!("Accept: {a}"));
    }
    cmd.arg("--output")
        .arg(dest)
        .arg("--")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the `curl` command was not found; install curl to download specs".to_string()
        } else {
            format!("running curl: {e}")
        }
    })?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                if let Ok(m) = std::fs::metadata(dest) {
                    progress.message(label, &format!("{} received", human_bytes(m.len())));
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            Err(e) => return Err(format!("waiting for curl: {e}")),
        }
    };
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if !status.success() {
        let _ = std::fs::remove_file(dest);
        // With --retry, curl repeats the same message once per attempt.
        let mut lines: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines.dedup();
        let err = lines.join("; ");
        return Err(if err.is_empty() {
            format!("downloading {url} failed ({status})")
        } else {
            format!("downloading {url}: {err}")
        });
    }
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// A wheel chosen from a PEP 691 simple-index page.
#[derive(Debug, Clone, PartialEq)]
pub struct WheelFile {
    pub url: String,
    pub sha256: Option<String>,
}

/// Picks the pure-Python wheel of `version` from a project's PEP 691 JSON page.
/// `page_url` resolves relative links.
pub fn pick_wheel(
    json: &str,
    project: &str,
    version: &str,
    page_url: &str,
) -> Result<WheelFile, String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("index page for {project}: {e}"))?;
    let files = doc
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or_else(|| format!("index page for {project} has no `files` list"))?;
    // Wheel names normalise `-` to `_` in the project part.
    let stem = format!("{}-{version}-", project.replace('-', "_")).to_ascii_lowercase();
    let mut best: Option<WheelFile> = None;
    for f in files {
        let Some(name) = f.get("filename").and_then(|n| n.as_str()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with(&stem) || !lower.ends_with(".whl") {
            continue;
        }
        if f.get("yanked")
            .is_some_and(|y| y.as_bool() == Some(true) || y.is_string())
        {
            continue;
        }
        let Some(url) = f.get("url").and_then(|u| u.as_str()) else {
            continue;
        };
        let wheel = WheelFile {
            url: join_url(page_url, url),
            sha256: f
                .get("hashes")
                .and_then(|h| h.get("sha256"))
                .and_then(|h| h.as_str())
                .map(str::to_ascii_lowercase),
        };
        // A pure wheel is the same on every platform; prefer it over binary ones.
        let pure = lower.ends_with("-none-any.whl");
        if pure || best.is_none() {
            best = Some(wheel);
            if pure {
                break;
            }
        }
    }
    best.ok_or_else(|| format!("no wheel of {project} {version} in the index"))
}

fn join_url(base: &str, link: &str) -> String {
    if link.contains("://") {
        return link.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if link.starts_with('/') {
        return format!("{}{link}", &base[..origin_end]);
    }
    let dir_end = base.rfind('/').map(|i| i + 1).unwrap_or(base.len());
    format!("{}{link}", &base[..dir_end.max(origin_end)])
}

/// One member of a zip archive.
pub struct ZipMember {
    pub name: String,
    pub data: Vec<u8>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// The members of a zip archive whose names `keep` accepts, decompressed and CRC-checked.
/// Enough of the format for wheels: stored and deflated members, no zip64, no encryption.
pub fn read_zip(bytes: &[u8], keep: &dyn Fn(&str) -> bool) -> Result<Vec<ZipMember>, String> {
    const EOCD: u32 = 0x0605_4b50;
    const CENTRAL: u32 = 0x0201_4b50;
    const LOCAL: u32 = 0x0403_4b50;
    let bad = |what: &str| format!("not a readable zip archive ({what})");
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(EOCD))
        .ok_or_else(|| bad("no end-of-directory record"))?;
    let count = u16_at(bytes, eocd + 10).ok_or_else(|| bad("short end record"))?;
    let cd_offset = u32_at(bytes, eocd + 16).ok_or_else(|| bad("short end record"))?;
    if count == 0xFFFF || cd_offset == 0xFFFF_FFFF {
        return Err("zip64 archives are not supported".into());
    }
    let mut out = Vec::new();
    let mut p = cd_offset as usize;
    for _ in 0..count {
        if u32_at(bytes, p) != Some(CENTRAL) {
            return Err(bad("broken central directory"));
        }
        let field = |off: usize| u16_at(bytes, p + off).ok_or_else(|| bad("short directory entry"));
        let flags = field(8)?;
        let method = field(10)?;
        let crc = u32_at(bytes, p + 16).ok_or_else(|| bad("short directory entry"))?;
        let csize = u32_at(bytes, p + 20).ok_or_else(|| bad("short directory entry"))? as usize;
        let usize_ = u32_at(bytes, p + 24).ok_or_else(|| bad("short directory entry"))? as usize;
        let (nlen, elen, clen) = (
            field(28)? as usize,
            field(30)? as usize,
            field(32)? as usize,
        );
        let local = u32_at(bytes, p + 42).ok_or_else(|| bad("short directory entry"))? as usize;
        let name_bytes = bytes
            .get(p + 46..p + 46 + nlen)
            .ok_or_else(|| bad("short name"))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        p += 46 + nlen + elen + clen;
        if name.ends_with('/') || !keep(&name) {
            continue;
        }
        if flags & 1 != 0 {
            return Err(format!("zip member {name} is encrypted"));
        }
        if u32_at(bytes, local) != Some(LOCAL) {
            return Err(bad("broken local header"));
        }
        let lnlen = u16_at(bytes, local + 26).ok_or_else(|| bad("short local header"))? as usize;
        let lelen = u16_at(bytes, local + 28).ok_or_else(|| bad("short local header"))? as usize;
        let start = local + 30 + lnlen + lelen;
        let raw = bytes
            .get(start..start + csize)
            .ok_or_else(|| bad("member past the end"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut d = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut d)
                    .map_err(|e| format!("zip member {name}: {e}"))?;
                d
            }
            m => {
                return Err(format!(
                    "zip member {name}: compression method {m} not supported"
                ))
            }
        };
        let mut c = flate2::Crc::new();
        c.update(&data);
        if data.len() != usize_ || c.sum() != crc {
            return Err(format!(
                "zip member {name} is corrupt (size or CRC mismatch)"
            ));
        }
        out.push(ZipMember { name, data });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_pure_wheel() {
        let page = r#"{"files":[
          {"filename":"botocore-1.44.5.tar.gz","url":"https://f/x.tar.gz","hashes":{"sha256":"aa"}},
          {"filename":"botocore-1.44.4-py3-none-any.whl","url":"https://f/old.whl","hashes":{}},
          {"filename":"botocore-1.44.5-py3-none-any.whl","url":"../../packages/b.whl","hashes":{"sha256":"BB"}}
        ]}"#;
        let w = pick_wheel(
            page,
            "botocore",
            "1.44.5",
            "https://pypi.org/simple/botocore/",
        )
        .unwrap();
        assert_eq!(
            w.url,
            "https://pypi.org/simple/botocore/../../packages/b.whl"
        );
        assert_eq!(w.sha256.as_deref(), Some("bb"));
        assert!(pick_wheel(page, "botocore", "9.9", "https://x/").is_err());
        assert!(pick_wheel("[]", "botocore", "1", "https://x/").is_err());
    }

    #[test]
    fn joins_urls() {
        assert_eq!(join_url("https://a/b/c/", "/p/x.whl"), "https://a/p/x.whl");
        assert_eq!(join_url("https://a/b/c/", "x.whl"), "https://a/b/c/x.whl");
        assert_eq!(join_url("https://a/b/", "https://z/y"), "https://z/y");
    }

    #[test]
    fn rejects_garbage_zip() {
        assert!(read_zip(b"not a zip at all, definitely not", &|_| true).is_err());
        assert!(read_zip(b"", &|_| true).is_err());
    }
}
