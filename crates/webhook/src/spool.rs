//! The durable spool: accepted batches, appended to segment files and fsync'd before the client
//! hears 200, plus a checkpoint saying how far the engine has got.
//!
//! Layout of the spool directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: segments, numbered in write order. A segment is a run of
//!   records `[len: u32 LE][crc32: u32 LE][payload: len bytes]`; the payload is a request body
//!   exactly as accepted. Segments are only ever appended to, by one writer; after a restart the
//!   writer starts a new segment, so an old segment can only end in a torn record, never hold
//!   one in the middle.
//! - `checkpoint`: JSON `{"seg":…,"off":…,"output":…,"output_len":…}`, replaced atomically
//!   (write to a temporary file, fsync, rename, fsync the directory). Everything before
//!   (`seg`, `off`) has been processed and its alerts are on disk; the alert output file was
//!   `output_len` bytes long at that moment.

use serde_json::{json, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const HEADER: u64 = 8;

/// A position in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub seg: u64,
    pub off: u64,
}

/// What the engine has durably finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub pos: Pos,
    /// The alert file and its length when the checkpoint was taken (absent for stdout).
    pub output: Option<(String, u64)>,
}

pub fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Segments present in `dir`, in order, with their sizes.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        let Ok(id) = stem.parse::<u64>() else {
            continue;
        };
        out.push((id, entry.metadata()?.len()));
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn read_checkpoint(dir: &Path) -> io::Result<Option<Checkpoint>> {
    let text = match fs::read_to_string(dir.join("checkpoint")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("spool checkpoint: {what}"),
        )
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| bad(&format!("missing {k}")))
    };
    let pos = Pos {
        seg: num("seg")?,
        off: num("off")?,
    };
    let output = match (
        v.get("output").and_then(Value::as_str),
        v.get("output_len").and_then(Value::as_u64),
    ) {
        (Some(p), Some(n)) => Some((p.to_string(), n)),
        _ => None,
    };
    Ok(Some(Checkpoint { pos, output }))
}

pub fn write_checkpoint(dir: &Path, cp: &Checkpoint) -> io::Result<()> {
    let mut v = json!({ "seg": cp.pos.seg, "off": cp.pos.off });
    if let Some((p, n)) = &cp.output {
        v["output"] = json!(p);
        v["output_len"] = json!(n);
    }
    let tmp = dir.join("checkpoint.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(v.to_string().as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join("checkpoint"))?;
    sync_dir(dir)
}

/// The single appender. Not synchronised: it lives on the spool thread.
pub struct SpoolWriter {
    dir: PathBuf,
    seg: u64,
    file: File,
    len: u64,
    seg_max: u64,
    bytes: Arc<AtomicU64>,
}

impl SpoolWriter {
    /// Starts a fresh segment `first_seg`.
    pub fn open(
        dir: &Path,
        first_seg: u64,
        seg_max: u64,
        bytes: Arc<AtomicU64>,
    ) -> io::Result<SpoolWriter> {
        let file = Self::create(dir, first_seg)?;
        Ok(SpoolWriter {
            dir: dir.to_path_buf(),
            seg: first_seg,
            file,
            len: 0,
            seg_max,
            bytes,
        })
    }

    fn create(dir: &Path, id: u64) -> io::Result<File> {
        let f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(seg_path(dir, id))?;
        // The new name must survive a crash too, or the data in it is unreachable.
        sync_dir(dir)?;
        Ok(f)
    }

    /// Moves to a new segment (after syncing the current one).
    pub fn roll(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        let next = self.seg + 1;
        self.file = Self::create(&self.dir, next)?;
        self.seg = next;
        self.len = 0;
        Ok(())
    }

    /// Appends one record (not yet durable: call [`SpoolWriter::sync`]); returns its end.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<Pos> {
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record larger than 4 GiB"))?;
        if self.len > 0 && self.len + HEADER + payload.len() as u64 > self.seg_max {
            self.roll()?;
        }
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.file.write_all(&header)?;
        self.file.write_all(payload)?;
        let n = HEADER + payload.len() as u64;
        self.len += n;
        self.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(Pos {
            seg: self.seg,
            off: self.len,
        })
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Why reading a segment stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    Clean,
    /// A record cut short or failing its checksum: a write that never completed (never
    /// acknowledged, since acknowledgement waits for fsync).
    Torn {
        at: u64,
        why: String,
    },
}

/// Reads the records of segment `id` from `from`, calling `each(payload, end_offset)`.
pub fn read_segment(
    dir: &Path,
    id: u64,
    from: u64,
    mut each: impl FnMut(Vec<u8>, u64),
) -> io::Result<Tail> {
    let mut f = File::open(seg_path(dir, id))?;
    let size = f.metadata()?.len();
    f.seek(SeekFrom::Start(from))?;
    let mut reader = io::BufReader::with_capacity(1 << 20, f);
    let mut at = from;
    while at < size {
        if size - at < HEADER {
            return Ok(Tail::Torn {
                at,
                why: "truncated record header".into(),
            });
        }
        let mut header = [0u8; 8];
        reader.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if size - at - HEADER < len {
            return Ok(Tail::Torn {
                at,
                why: format!("record of {len} bytes cut short"),
            });
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            return Ok(Tail::Torn {
                at,
                why: "checksum mismatch".into(),
            });
        }
        at += HEADER + len;
        each(payload, at);
    }
    Ok(Tail::Clean)
}

/// Deletes segments with ids in `from..to`, subtracting their sizes from `bytes`.
pub fn delete_segments(dir: &Path, from: u64, to: u64, bytes: &AtomicU64) -> io::Result<()> {
    let mut removed = false;
    for id in from..to {
        let p = seg_path(dir, id);
        match fs::metadata(&p) {
            Ok(m) => {
                fs::remove_file(&p)?;
                bytes.fetch_sub(
                    m.len().min(bytes.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                removed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ruleatlas-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn records_round_trip_across_segments_and_torn_tail_stops_reading() {
        let dir = tempdir("rt");
        let bytes = Arc::new(AtomicU64::new(0));
        let mut w = SpoolWriter::open(&dir, 1, 40, bytes.clone()).unwrap();
        let a = w.append(b"first record").unwrap();
        let b = w.append(b"second record").unwrap();
        w.sync().unwrap();
        assert_eq!(a, Pos { seg: 1, off: 20 });
        assert_eq!(
            b.seg, 2,
            "second record does not fit in 40 bytes, so it rolls over"
        );
        assert_eq!(
            list_segments(&dir)
                .unwrap()
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        let mut got = Vec::new();
        read_segment(&dir, 1, 0, |p, end| got.push((p, end))).unwrap();
        read_segment(&dir, 2, 0, |p, end| got.push((p, end))).unwrap();
        assert_eq!(
            got,
            vec![
                (b"first record".to_vec(), 20),
                (b"second record".to_vec(), 21)
            ]
        );
        // A torn write: half a record at the end of segment 2.
        let mut f = OpenOptions::new()
            .append(true)
            .open(seg_path(&dir, 2))
            .unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2, 3, 4, b'x']).unwrap();
        let mut n = 0;
        let tail = read_segment(&dir, 2, 0, |_, _| n += 1).unwrap();
        assert_eq!(n, 1);
        assert!(matches!(tail, Tail::Torn { at: 21, .. }), "{tail:?}");
        // Reading from an offset skips what came before.
        let mut n = 0;
        read_segment(&dir, 1, 20, |_, _| n += 1).unwrap();
        assert_eq!(n, 0);
        delete_segments(&dir, 0, 2, &bytes).unwrap();
        assert_eq!(list_segments(&dir).unwrap().len(), 1);
        assert_eq!(bytes.load(Ordering::Relaxed), 21);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupted_payload_is_detected() {
        let dir = tempdir("crc");
        let mut w = SpoolWriter::open(&dir, 7, 1 << 20, Arc::new(AtomicU64::new(0))).unwrap();
        w.append(b"{\"kind\":\"Event\"}").unwrap();
        w.sync().unwrap();
        let mut data = fs::read(seg_path(&dir, 7)).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(seg_path(&dir, 7), data).unwrap();
        let tail = read_segment(&dir, 7, 0, |_, _| panic!("corrupt record delivered")).unwrap();
        assert_eq!(
            tail,
            Tail::Torn {
                at: 0,
                why: "checksum mismatch".into()
            }
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempdir("cp");
        assert_eq!(read_checkpoint(&dir).unwrap(), None);
        let cp = Checkpoint {
            pos: Pos { seg: 3, off: 99 },
            output: Some(("/tmp/a.ndjson".into(), 1234)),
        };
        write_checkpoint(&dir, &cp).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap(), Some(cp));
        fs::write(dir.join("checkpoint"), "{").unwrap();
        assert!(read_checkpoint(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
