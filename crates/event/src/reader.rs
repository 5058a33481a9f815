//! Readers: files and streams to events.
//!
//! Accepted shapes, recognised from the content, not the file name: NDJSON (one document per
//! line), a JSON array of documents, concatenated JSON documents, an audit `EventList`
//! (`{"kind":"EventList","items":[…]}`), a CloudTrail file (`{"Records":[…]}`), GKE / AKS / EKS
//! wrappers around audit events (unwrapped by [`crate::wrappers`]); any of them gzip- or
//! zstd-compressed (recognised by their magic bytes). `-` reads standard input.
//!
//! Bad input is normal input: a line that is not JSON, or a document that is not an object, is
//! yielded as a [`BadEvent`] with its location and reading goes on with the next line.
//!
//! [`read_events_parallel`] parses NDJSON on several threads and yields events in input order,
//! with a bounded number of chunks in flight (memory does not grow with the input).

use crate::{Event, EventOptions, Origin, Projection, ProjectionScope, SourceKind};
use ruleatlas_ir::LineIndex;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A document that could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for BadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

/// An input that cannot be opened or read at all.
#[derive(Debug)]
pub struct InputError {
    pub path: String,
    pub source: io::Error,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.source)
    }
}

impl std::error::Error for InputError {}

type Item = Result<Event, BadEvent>;

pub(crate) fn open_raw(path: &str) -> Result<Box<dyn Read + Send>, InputError> {
    if path == "-" {
        return Ok(Box::new(io::stdin()));
    }
    File::open(path)
        .map(|f| Box::new(f) as Box<dyn Read + Send>)
        .map_err(|source| InputError {
            path: path.to_string(),
            source,
        })
}

/// Wraps a byte stream in a buffered reader, decompressing gzip or zstd when the magic bytes say
/// so (concatenated members / frames are read through). A UTF-8 byte order mark at the start of
/// the text is skipped: editors and Windows tools write one, and no JSON parser reads past it.
pub(crate) fn decoded(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(SkipBom::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(buffered),
        )))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(SkipBom::new(BufReader::with_capacity(
            256 * 1024,
            zstd::stream::read::Decoder::with_buffer(buffered)?,
        )))
    } else {
        if head.starts_with(BOM) {
            buffered.consume(BOM.len());
        }
        Box::new(buffered)
    })
}

/// A decompressed text that skips a byte order mark at its start. The mark is looked for on the
/// first read, not when the input is opened: a decompressor's error then stops reading where it
/// always did, at the line it spoils. (A mark split across the decompressor's first two blocks
/// is left to [`parse_line`], which drops one before the first line.)
struct SkipBom<R> {
    inner: R,
    checked: bool,
}

impl<R> SkipBom<R> {
    fn new(inner: R) -> SkipBom<R> {
        SkipBom {
            inner,
            checked: false,
        }
    }
}

impl<R: BufRead> BufRead for SkipBom<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.checked {
            let bom = self.inner.fill_buf()?.starts_with(BOM);
            self.checked = true;
            if bom {
                self.inner.consume(BOM.len());
            }
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }
}

impl<R: BufRead> Read for SkipBom<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xef\xbb\xbf";

/// Opens `path` (`-` for stdin) and returns its events.
pub fn read_events(path: &str, opts: &EventOptions) -> Result<EventStream, InputError> {
    let raw = open_raw(path)?;
    read_reader(path, raw, opts).map_err(|source| InputError {
        path: path.to_string(),
        source,
    })
}

/// Reads events from any byte stream; `name` is used in locations.
pub fn read_reader(
    name: &str,
    raw: Box<dyn Read + Send>,
    opts: &EventOptions,
) -> io::Result<EventStream> {
    Ok(EventStream::new(
        Arc::from(name),
        decoded(raw)?,
        opts.clone(),
    ))
}

/// serde_json's message without its own " at line L column C" (the location is ours, in the file).
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

pub(crate) fn bad(name: &Arc<str>, line: u64, column: u64, message: String) -> BadEvent {
    BadEvent {
        path: name.to_string(),
        line,
        column,
        message,
    }
}

/// Expands wrappers (arrays, EventList, Records) into events appended to `out` (seq unset).
fn expand(doc: Value, line: u64, name: &Arc<str>, opts: &EventOptions, out: &mut VecDeque<Item>) {
    match doc {
        Value::Array(items) => items
            .into_iter()
            .for_each(|it| expand(it, line, name, opts, out)),
        Value::Object(mut map) => {
            let is_list = map.get("kind").and_then(Value::as_str) == Some("EventList");
            let key = if is_list && map.get("items").is_some_and(Value::is_array) {
                Some("items")
            } else if map.len() <= 2 && map.get("Records").is_some_and(Value::is_array) {
                Some("Records")
            } else {
                None
            };
            if let Some(key) = key {
                if let Some(Value::Array(items)) = map.remove(key) {
                    items
                        .into_iter()
                        .for_each(|it| expand(it, line, name, opts, out));
                }
                return;
            }
            let mut ev = Event::new(Value::Object(map), opts);
            ev.origin = Origin {
                file: name.clone(),
                line,
            };
            out.push_back(Ok(ev));
        }
        other => {
            let what = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "a value",
            };
            let msg = format!("expected a JSON object (an event), found {what}");
            out.push_back(Err(bad(name, line, 1, msg)));
        }
    }
}

/// The substrings that make a line worth a projected parse, searchers built once.
struct Markers {
    raw_audit: memchr::memmem::Finder<'static>,
    as_is: Vec<memchr::memmem::Finder<'static>>,
}

fn markers() -> &'static Markers {
    static MARKERS: std::sync::OnceLock<Markers> = std::sync::OnceLock::new();
    MARKERS.get_or_init(|| Markers {
        raw_audit: memchr::memmem::Finder::new("\"audit.k8s.io/"),
        as_is: [
            "audit.k8s.io/",
            "auditID",
            "kubernetes.audit",
            "eventSource",
            "aws.cloudtrail",
        ]
        .iter()
        .map(memchr::memmem::Finder::new)
        .collect(),
    })
}

/// A raw audit Event line parsed through the projection; `None` for anything else (another
/// source, a wrapper, invalid JSON), which the caller parses whole — so errors, wrappers and
/// other sources read exactly as without a projection.
fn parse_projected(
    projection: &Projection,
    text: &str,
    line: u64,
    name: &Arc<str>,
    opts: &EventOptions,
) -> Option<Event> {
    // Only worth an attempt when the text can be of a kind the projection serves (a miss is
    // parsed whole after all).
    let worth = match opts.projection_scope {
        // Every raw audit Event names its API version.
        // (memchr's SIMD substring search: `str::contains` stops at every quote.)
        ProjectionScope::RawAudit => markers().raw_audit.find(text.as_bytes()).is_some(),
        ProjectionScope::AsIs => markers()
            .as_is
            .iter()
            .any(|m| m.find(text.as_bytes()).is_some()),
    };
    if !worth {
        return None;
    }
    let doc = projection.parse_reusing(text).ok()?;
    // The kind is decided by top-level keys the projection always keeps, so this is the
    // answer the whole document would give. A raw audit Event's kind and time come from one
    // pass over its keys.
    let time = match opts.timestamp_field {
        None => crate::raw_audit_time(&doc),
        Some(_) => None,
    };
    let kind = match time {
        Some(_) => SourceKind::KubernetesAudit,
        None => SourceKind::detect(&doc),
    };
    let served = match opts.projection_scope {
        ProjectionScope::RawAudit => kind == SourceKind::KubernetesAudit,
        // These kinds are never unwrapped (see `wrappers::is_wrapper`); a `Records` batch is.
        ProjectionScope::AsIs => {
            matches!(
                kind,
                SourceKind::KubernetesAudit
                    | SourceKind::KubernetesAuditEcs
                    | SourceKind::CloudTrail
                    | SourceKind::CloudTrailEcs
            ) && doc.get("Records").is_none()
        }
    };
    if !served {
        crate::projection::spare::give(doc);
        return None;
    }
    let mut ev = match time {
        Some(ts_ms) => Event::at(doc, kind, ts_ms),
        None => Event::of_kind(doc, kind, opts),
    };
    ev.origin = Origin {
        file: name.clone(),
        line,
    };
    ev.raw = Some(Arc::from(text));
    Some(ev)
}

/// `bytes` as text, checked as [`std::str::from_utf8`] checks it (and with its error): the
/// check runs for every line read, and simdutf8's vector check (chosen for the CPU at run time)
/// costs a fraction of the standard library's word-at-a-time one on kilobyte lines. Only text
/// that fails is checked again, for the standard error's position.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// Parses one NDJSON line given as bytes (read without a UTF-8 check): a blank line yields
/// nothing, a line that is not UTF-8 a bad event at its first bad byte.
pub(crate) fn parse_line_bytes(
    bytes: &[u8],
    line: u64,
    name: &Arc<str>,
    opts: &EventOptions,
    out: &mut VecDeque<Item>,
) {
    match utf8(bytes) {
        Ok(t) if t.trim().is_empty() => {}
        Ok(t) => parse_line(t, line, name, opts, out),
        Err(e) => {
            let column = e.valid_up_to() as u64 + 1;
            out.push_back(Err(bad(name, line, column, NotUtf8 { column }.to_string())));
        }
    }
}

/// Parses one NDJSON line (already known not to be blank) into its events.
pub(crate) fn parse_line(
    text: &str,
    line: u64,
    name: &Arc<str>,
    opts: &EventOptions,
    out: &mut VecDeque<Item>,
) {
    // A byte order mark before the first line (files read in parts by `scan` are not read
    // through `decoded`).
    let text = match line {
        1 => text.strip_prefix('\u{feff}').unwrap_or(text),
        _ => text,
    };
    if let Some(gate) = &opts.line_gate {
        if !gate.filter.keeps(text.as_bytes()) {
            gate.skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
    }
    let trimmed = text.trim();
    if let Some(projection) = &opts.projection {
        if let Some(ev) = parse_projected(projection, trimmed, line, name, opts) {
            out.push_back(Ok(ev));
            return;
        }
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(doc) => {
            let before = out.len();
            let single = doc.is_object();
            expand(doc, line, name, opts, out);
            // A plain one-event line keeps its text; wrappers expanded into several don't.
            if single && out.len() == before + 1 {
                if let Some(Ok(ev)) = out.back_mut() {
                    ev.raw = Some(Arc::from(trimmed));
                }
            }
        }
        Err(e) => {
            let leading = text.len() - text.trim_start().len();
            let col = e.column() as u64 + leading as u64;
            out.push_back(Err(bad(
                name,
                line,
                col.max(1),
                format!("invalid JSON: {}", json_message(&e)),
            )));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Detect,
    Lines,
    Done,
}

/// A line that is not UTF-8 (JSON text must be), with the 1-based column of its first bad byte.
/// The line has been read past: the input goes on with the next one.
#[derive(Debug)]
struct NotUtf8 {
    column: u64,
}

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line is not valid UTF-8 (byte {})", self.column)
    }
}

impl std::error::Error for NotUtf8 {}

/// The column of a [`NotUtf8`] error from [`read_line_into`]: a bad line, not a broken input.
fn not_utf8_column(e: &io::Error) -> Option<u64> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<NotUtf8>())
        .map(|n| n.column)
}

/// `BufRead::read_until(b'\n', out)`, the newline found with the `memchr` crate's SIMD
/// search, quicker than the standard library's on lines of a kilobyte.
fn read_line_bytes(reader: &mut dyn BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    let start = out.len();
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        match memchr::memchr(b'\n', available) {
            Some(i) => {
                out.extend_from_slice(&available[..=i]);
                reader.consume(i + 1);
                break;
            }
            None => {
                let n = available.len();
                out.extend_from_slice(available);
                reader.consume(n);
            }
        }
    }
    Ok(out.len() - start)
}

/// [`BufRead::read_line`] with memchr's SIMD newline search (the standard library's is a
/// word-at-a-time loop, a visible cost on 1 KB lines). Same contract: appends one line with its
/// `\n`, returns the bytes read (0 at the end), and fails with `InvalidData` on a line that is
/// not UTF-8 (nothing appended then) — unlike the standard library's, having read past that
/// line, with a [`NotUtf8`] inside the error, so a caller can report the line and go on.
fn read_line_into(reader: &mut dyn BufRead, out: &mut String) -> io::Result<usize> {
    let mut bytes = std::mem::take(out).into_bytes();
    let start = bytes.len();
    let read = match read_line_bytes(reader, &mut bytes) {
        Ok(n) => n,
        Err(e) => {
            bytes.truncate(start);
            *out = String::from_utf8(bytes).unwrap_or_default();
            return Err(e);
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            *out = text;
            Ok(read)
        }
        Err(e) => {
            let column = (e.utf8_error().valid_up_to() - start) as u64 + 1;
            let mut bytes = e.into_bytes();
            bytes.truncate(start);
            *out = String::from_utf8(bytes).unwrap_or_default();
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                NotUtf8 { column },
            ))
        }
    }
}

/// Iterator over the events of one input, in input order.
pub struct EventStream {
    name: Arc<str>,
    reader: Box<dyn BufRead + Send>,
    opts: EventOptions,
    mode: Mode,
    line: u64,
    seq: u64,
    pending: VecDeque<Item>,
    buf: String,
    failed: bool,
}

impl EventStream {
    pub(crate) fn new(
        name: Arc<str>,
        reader: Box<dyn BufRead + Send>,
        opts: EventOptions,
    ) -> EventStream {
        EventStream {
            name,
            reader,
            opts,
            mode: Mode::Detect,
            line: 0,
            seq: 0,
            pending: VecDeque::new(),
            buf: String::new(),
            failed: false,
        }
    }

    /// Parses the next line where it lies in the reader's buffer, without copying it out,
    /// when the buffer holds all of it and it is UTF-8 (nearly every line: the buffer holds a
    /// few hundred). False, having consumed nothing, when it cannot: [`Self::read_line`] then
    /// reads the line (across buffer refills) and reports what is wrong with it.
    fn parse_buffered_line(&mut self) -> bool {
        let Ok(available) = self.reader.fill_buf() else {
            return false;
        };
        let Some(end) = memchr::memchr(b'\n', available) else {
            return false;
        };
        let Ok(text) = utf8(&available[..=end]) else {
            return false;
        };
        self.line += 1;
        if !text.trim().is_empty() {
            parse_line(text, self.line, &self.name, &self.opts, &mut self.pending);
            crate::wrappers::unwrap_items(&mut self.pending, 0, &self.opts);
        }
        self.reader.consume(end + 1);
        true
    }

    fn read_line(&mut self) -> Option<io::Result<()>> {
        self.buf.clear();
        match read_line_into(&mut *self.reader, &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                Some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Parses the rest of the input as one or more whole JSON documents (pretty-printed files).
    fn read_whole(&mut self, first: String, first_line: u64) {
        let mut text = first;
        if let Err(e) = self.reader.read_to_string(&mut text) {
            let b = bad(&self.name, first_line, 1, format!("cannot read input: {e}"));
            self.pending.push_back(Err(b));
            return;
        }
        let index = LineIndex::new(&text);
        let base = first_line.saturating_sub(1);
        let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
        let mut start = 0usize;
        loop {
            // Position of the next document's first byte, for its line number.
            let skip = text[start..].len() - text[start..].trim_start().len();
            let doc_line = index.line_col(&text, start + skip).0 as u64 + base;
            match stream.next() {
                None => break,
                Some(Ok(doc)) => {
                    start = stream.byte_offset();
                    expand(doc, doc_line, &self.name, &self.opts, &mut self.pending);
                }
                Some(Err(e)) => {
                    let line = e.line() as u64 + base;
                    let b = bad(
                        &self.name,
                        line,
                        e.column() as u64,
                        format!("invalid JSON: {}", json_message(&e)),
                    );
                    self.pending.push_back(Err(b));
                    break;
                }
            }
        }
    }
}

/// The next parsed item, an event numbered with the input's next `seq` (bad lines take none).
pub(crate) fn next_numbered(pending: &mut VecDeque<Item>, seq: &mut u64) -> Option<Item> {
    let mut item = pending.pop_front()?;
    if let Ok(ev) = &mut item {
        ev.seq = *seq;
        *seq += 1;
    }
    Some(item)
}

impl Iterator for EventStream {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = next_numbered(&mut self.pending, &mut self.seq) {
                return Some(item);
            }
            if self.mode == Mode::Done || self.failed {
                return None;
            }
            if self.mode == Mode::Lines && self.parse_buffered_line() {
                continue;
            }
            if let Err(e) = self.read_line()? {
                let line = self.line + 1;
                if let Some(column) = not_utf8_column(&e) {
                    self.line = line;
                    return Some(Err(bad(&self.name, line, column, e.to_string())));
                }
                self.failed = true;
                return Some(Err(bad(
                    &self.name,
                    line,
                    1,
                    format!("cannot read input: {e}"),
                )));
            }
            let trimmed = self.buf.trim();
            if trimmed.is_empty() {
                continue;
            }
            let line = self.line;
            if self.mode == Mode::Detect {
                if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
                    if e.is_eof() || trimmed.starts_with('[') {
                        // The first document spans several lines: a pretty-printed file.
                        self.mode = Mode::Done;
                        let first = std::mem::take(&mut self.buf);
                        self.read_whole(first, line);
                        crate::wrappers::unwrap_items(&mut self.pending, 0, &self.opts);
                        continue;
                    }
                }
                self.mode = Mode::Lines;
            }
            parse_line(&self.buf, line, &self.name, &self.opts, &mut self.pending);
            crate::wrappers::unwrap_items(&mut self.pending, 0, &self.opts);
        }
    }
}

/// Lines per parallel work unit: large enough to amortise channel costs, small enough that the
/// documents of the chunks in flight stay in the cores' caches until the rules have read them
/// and their parser thread frees them (all rules, 200,000 audit events, 2 threads: 3.6–3.8 s of
/// CPU with 2,048 lines, 3.1–3.5 s with 256).
const CHUNK_LINES: usize = 256;

/// Like [`read_events`], but NDJSON input is parsed on `threads` worker threads. Events come
/// out in input order with the same `seq` numbers as the sequential reader; other shapes (arrays,
/// pretty-printed documents) fall back to the sequential reader.
pub fn read_events_parallel(
    path: &str,
    opts: &EventOptions,
    threads: usize,
) -> Result<Box<dyn Iterator<Item = Item> + Send>, InputError> {
    let raw = open_raw(path)?;
    read_reader_parallel(path, raw, opts, threads).map_err(|source| InputError {
        path: path.to_string(),
        source,
    })
}

/// [`read_events_parallel`] over any byte stream (a file wrapped to count the bytes read, say);
/// `name` is used in locations.
pub fn read_reader_parallel(
    name: &str,
    raw: Box<dyn Read + Send>,
    opts: &EventOptions,
    threads: usize,
) -> io::Result<Box<dyn Iterator<Item = Item> + Send>> {
    let mut reader = decoded(raw)?;
    // Look at the first non-blank line to choose the mode.
    // (Bytes: a first line that is not UTF-8 is the line reader's to report, not a failure.)
    let mut prefix = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        prefix.extend_from_slice(&line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    let name: Arc<str> = Arc::from(name);
    let is_plain_ndjson = std::str::from_utf8(&line)
        .is_ok_and(|l| serde_json::from_str::<Value>(l.trim()).is_ok_and(|v| v.is_object()));
    // Chained as buffered readers (`Chain` of two is one): a `BufReader` around the chain
    // copied every byte of the input once more, in 8 KB steps.
    let chained: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(prefix).chain(reader));
    if threads <= 1 || !is_plain_ndjson {
        return Ok(Box::new(EventStream::new(name, chained, opts.clone())));
    }
    Ok(Box::new(ParallelLines::start(
        name,
        chained,
        opts.clone(),
        threads,
    )))
}

struct Chunk {
    index: u64,
    first_line: u64,
    /// The lines' bytes, one after the other (one buffer per parser thread, reused chunk
    /// after chunk: not one allocation per line or per chunk).
    text: Vec<u8>,
    /// Each line's bytes in `text`, newline included.
    lines: Vec<std::ops::Range<usize>>,
}

/// The input of [`ParallelLines`], read a chunk at a time by whichever parser thread is free.
struct Source {
    reader: Box<dyn BufRead + Send>,
    /// Number of the next chunk.
    index: u64,
    /// Lines read so far.
    line_no: u64,
    /// The end (or a read error) was met: nothing more to read.
    done: bool,
}

impl Source {
    /// Reads the next chunk into `chunk` (its buffers emptied and reused); false when there is
    /// none. The reader that meets the end of the input gets, in `end`, what tells the consumer
    /// where it is: the number the next chunk would have had, with nothing or a bad item for a
    /// read error (see [`send_end`]).
    fn next_chunk(
        &mut self,
        chunk: &mut Chunk,
        name: &Arc<str>,
        end: &mut Option<(u64, VecDeque<Item>)>,
    ) -> bool {
        if self.done {
            return false;
        }
        chunk.text.clear();
        chunk.lines.clear();
        chunk.first_line = self.line_no + 1;
        let mut failure = None;
        while chunk.lines.len() < CHUNK_LINES {
            let start = chunk.text.len();
            // UTF-8 is checked by the parser threads, line by line.
            match read_line_bytes(&mut *self.reader, &mut chunk.text) {
                Ok(0) => break,
                Ok(_) => {
                    self.line_no += 1;
                    chunk.lines.push(start..chunk.text.len());
                }
                Err(e) => {
                    chunk.text.truncate(start);
                    failure = Some(e);
                    break;
                }
            }
        }
        chunk.index = self.index;
        let read_any = !chunk.lines.is_empty();
        if read_any {
            self.index += 1;
        }
        if chunk.lines.len() < CHUNK_LINES {
            self.done = true;
            let items = match failure {
                Some(e) => VecDeque::from([Err(bad(
                    name,
                    self.line_no + 1,
                    1,
                    format!("cannot read input: {e}"),
                ))]),
                // An empty terminal chunk tells the consumer where the input ends.
                None => VecDeque::new(),
            };
            *end = Some((self.index, items));
        }
        read_any
    }
}

/// Tells the consumer where the input ends: the terminal chunk `end` of [`Source::next_chunk`],
/// then the end marker.
fn send_end(end: (u64, VecDeque<Item>), results: &SyncSender<(u64, VecDeque<Item>)>) {
    let _ = results.send(end);
    let _ = results.send((u64::MAX, VecDeque::new()));
}

/// Whose turn it is to run the [`crate::OrderedHook`]: the index of the next chunk.
#[derive(Default)]
struct Turnstile {
    next: Mutex<u64>,
    changed: Condvar,
}

/// The turn of one chunk; passes it to the next chunk when dropped (also on a panic, so the
/// other threads are not left waiting).
struct Turn<'t> {
    turnstile: &'t Turnstile,
    index: u64,
}

impl Turnstile {
    /// Waits until chunk `index` is next.
    fn wait_for(&self, index: u64) -> Turn<'_> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        while *next != index {
            next = self
                .changed
                .wait(next)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Turn {
            turnstile: self,
            index,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut next = self
            .turnstile
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *next = self.index + 1;
        self.turnstile.changed.notify_all();
    }
}

struct ParallelLines {
    results: Receiver<(u64, VecDeque<Item>)>,
    /// Chunks are sent in input order, and only when they hold something (with an ordered
    /// hook: sent in turn); otherwise every chunk comes, in any order, and is put back in order
    /// here.
    in_order: bool,
    waiting: BTreeMap<u64, VecDeque<Item>>,
    next_chunk: u64,
    current: VecDeque<Item>,
    seq: u64,
}

/// Bytes per chunk buffer to start with (lines of ~1 KB × [`CHUNK_LINES`]).
const CHUNK_BYTES: usize = CHUNK_LINES * 1024;

impl ParallelLines {
    fn start(
        name: Arc<str>,
        reader: Box<dyn BufRead + Send>,
        opts: EventOptions,
        threads: usize,
    ) -> ParallelLines {
        let (res_tx, res_rx) = sync_channel::<(u64, VecDeque<Item>)>(threads * 2);
        // Each parser thread reads its next chunk itself, in turn, into its own buffer: the
        // lines are then in the cache of the core that parses them (read by another thread
        // and handed over, every line crossed cores, and every chunk's buffer was freed on
        // another thread than the one that made it).
        let source = Arc::new(Mutex::new(Source {
            reader,
            index: 0,
            line_no: 0,
            done: false,
        }));
        let turnstile = Arc::new(Turnstile::default());
        for _ in 0..threads {
            let source = source.clone();
            let turnstile = turnstile.clone();
            let res_tx = res_tx.clone();
            let name = name.clone();
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut hook = opts.parser_hook.as_ref().map(|h| (h.0)());
                // Events come back here to be freed (see `Event::home`).
                let home = crate::Home::new();
                let in_order = opts.ordered_hook.is_some();
                let mut chunk = Chunk {
                    index: 0,
                    first_line: 0,
                    text: Vec::with_capacity(CHUNK_BYTES),
                    lines: Vec::with_capacity(CHUNK_LINES),
                };
                loop {
                    let mut end = None;
                    let got = match source.lock() {
                        Ok(mut source) => source.next_chunk(&mut chunk, &name, &mut end),
                        Err(_) => return,
                    };
                    if !got {
                        if let Some(end) = end {
                            // In turn after the last chunk's results (see below).
                            let _turn = in_order.then(|| turnstile.wait_for(end.0));
                            send_end(end, &res_tx);
                        }
                        return;
                    }
                    // What came back while this thread parsed the last chunk or waited.
                    home.free_returned();
                    let mut out = VecDeque::with_capacity(chunk.lines.len());
                    for (i, range) in chunk.lines.iter().enumerate() {
                        let line = chunk.first_line + i as u64;
                        parse_line_bytes(&chunk.text[range.clone()], line, &name, &opts, &mut out);
                    }
                    let index = chunk.index;
                    crate::wrappers::unwrap_items(&mut out, 0, &opts);
                    for ev in out.iter_mut().flatten() {
                        if let Some(hook) = &mut hook {
                            hook(ev);
                        }
                        ev.home = home.address();
                    }
                    let Some(ordered) = &opts.ordered_hook else {
                        if res_tx.send((index, out)).is_err() {
                            return;
                        }
                        if let Some(end) = end {
                            send_end(end, &res_tx);
                        }
                        continue;
                    };
                    // Chunks are taken in input order, so the thread holding the next chunk is
                    // never waiting for a later one: the turn always comes.
                    let turn = turnstile.wait_for(index);
                    let mut events: Vec<&mut Event> = out.iter_mut().flatten().collect();
                    let done = (ordered.0)(&mut events);
                    // What goes on to the consumer: all of it, or only the bad lines when the
                    // hook finished the events. The finished events are dropped where they are,
                    // after the turn has passed on (moved out one by one, they cost a copy each).
                    let mut finished = VecDeque::new();
                    if done == crate::ChunkDone::Finished {
                        std::mem::swap(&mut finished, &mut out);
                        if finished.iter().any(|item| item.is_err()) {
                            // Rare: bad lines among the chunk's events.
                            let (bad, events): (VecDeque<Item>, VecDeque<Item>) =
                                finished.into_iter().partition(|item| item.is_err());
                            out = bad;
                            finished = events;
                        }
                    }
                    // Sent in turn, so chunks reach the consumer in input order, and only when
                    // something is left: a chunk whose events were all finished here wakes no
                    // one (waking the consumer for each chunk of 256 lines made ~12,000
                    // context switches per million events, the consumer preempting a parser
                    // thread on two cores).
                    let sent = out.is_empty() || res_tx.send((index, out)).is_ok();
                    if let Some(end) = end {
                        send_end(end, &res_tx);
                    }
                    drop(turn);
                    drop(finished);
                    if !sent {
                        return;
                    }
                }
            });
        }
        ParallelLines {
            results: res_rx,
            in_order: opts.ordered_hook.is_some(),
            waiting: BTreeMap::new(),
            next_chunk: 0,
            current: VecDeque::new(),
            seq: 0,
        }
    }
}

impl Iterator for ParallelLines {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = next_numbered(&mut self.current, &mut self.seq) {
                return Some(item);
            }
            if let Some(items) = self.waiting.remove(&self.next_chunk) {
                self.next_chunk += 1;
                self.current = items;
                continue;
            }
            match self.results.recv() {
                Ok((u64::MAX, _)) if self.in_order => return None,
                Ok((_, items)) if self.in_order => self.current = items,
                Ok((u64::MAX, _)) => {
                    // End marker: everything before it has been received or is in `waiting`.
                    if self.waiting.is_empty() {
                        return None;
                    }
                    self.waiting.insert(u64::MAX, VecDeque::new());
                }
                Ok((i, items)) => {
                    self.waiting.insert(i, items);
                }
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_check_answers_as_the_standard_one() {
        // Every length around the vector widths, a bad or multi-byte sequence at every place.
        let bads: [&[u8]; 5] = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc3\xa9"];
        for len in 0..140 {
            for at in 0..=len {
                for bad in bads {
                    let mut bytes = vec![b'a'; len];
                    bytes.splice(at..at, bad.iter().copied());
                    let ours = utf8(&bytes).map_err(|e| (e.valid_up_to(), e.error_len()));
                    let std =
                        std::str::from_utf8(&bytes).map_err(|e| (e.valid_up_to(), e.error_len()));
                    assert_eq!(ours, std, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn line_reader_agrees_with_the_standard_one() {
        // Lines longer than the buffer, CRLF, a last line without a newline, empty lines.
        let long = "x".repeat(10_000);
        let text = format!("a\r\n\n{long}\n\u{e9}t\u{e9}\nlast");
        for cap in [1usize, 7, 64, 8192] {
            let mut fast = io::BufReader::with_capacity(cap, text.as_bytes());
            let mut std_reader = io::BufReader::with_capacity(cap, text.as_bytes());
            loop {
                let (mut a, mut b) = (String::new(), String::new());
                let na = read_line_into(&mut fast, &mut a).expect("valid text");
                let nb = std_reader.read_line(&mut b).expect("valid text");
                assert_eq!((na, &a), (nb, &b), "buffer {cap}");
                if na == 0 {
                    break;
                }
            }
        }
        // Not UTF-8: an InvalidData error with the column, nothing appended, the line read past.
        let mut bad = io::BufReader::new(&b"ok\nab\xff\xfe\nnext\n"[..]);
        let mut s = String::new();
        assert_eq!(read_line_into(&mut bad, &mut s).expect("first line"), 3);
        s.clear();
        let e = read_line_into(&mut bad, &mut s).expect_err("invalid UTF-8");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(not_utf8_column(&e), Some(3));
        assert!(s.is_empty());
        assert_eq!(read_line_into(&mut bad, &mut s).expect("next line"), 5);
        assert_eq!(s, "next\n");
    }

    fn read(text: &str) -> Vec<Item> {
        let stream = read_reader(
            "t.json",
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            &EventOptions::default(),
        );
        stream.map(|s| s.collect()).unwrap_or_default()
    }

    #[test]
    fn ndjson_with_a_bad_line_keeps_going() {
        let items = read("{\"a\":1}\nnot json\n\n{\"a\":2}\n");
        assert_eq!(items.len(), 3);
        let bad = items[1]
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_else(|| panic!("expected a bad line"));
        assert_eq!((bad.line, bad.path.as_str()), (2, "t.json"));
        assert!(bad.message.contains("invalid JSON"), "{}", bad.message);
        assert_eq!(
            items[2].as_ref().map(|e| (e.seq, e.origin.line)).ok(),
            Some((1, 4))
        );
    }

    #[test]
    fn lines_in_the_buffer_and_across_refills_read_alike() {
        // Lines shorter and longer than the reader's buffer (64 bytes: most lines cross a
        // refill), blank lines, a line that is not UTF-8, bad JSON and a last line without
        // its newline: each line's outcome at its own number, whatever the buffer size.
        let mut text: Vec<u8> = Vec::new();
        let mut expect: Vec<(u64, Option<u64>)> = Vec::new(); // (line, value of "n" or bad)
        for i in 1..=60u64 {
            match i % 7 {
                0 => text.extend_from_slice(b"\n"),
                3 => {
                    text.extend_from_slice(b"{\"n\":\"\xff\"}\n");
                    expect.push((i, None));
                }
                5 => {
                    text.extend_from_slice(b"not json\n");
                    expect.push((i, None));
                }
                _ => {
                    let pad = "x".repeat((i as usize * 13) % 150);
                    text.extend_from_slice(format!("{{\"n\":{i},\"pad\":\"{pad}\"}}\n").as_bytes());
                    expect.push((i, Some(i)));
                }
            }
        }
        text.extend_from_slice(b"{\"n\":61}");
        expect.push((61, Some(61)));
        for cap in [64, 1 << 16] {
            let reader = io::BufReader::with_capacity(cap, io::Cursor::new(text.clone()));
            let stream =
                EventStream::new("t.json".into(), Box::new(reader), EventOptions::default());
            let got: Vec<(u64, Option<u64>)> = stream
                .map(|item| match item {
                    Ok(ev) => (ev.origin.line, ev.doc.get("n").and_then(Value::as_u64)),
                    Err(bad) => (bad.line, None),
                })
                .collect();
            assert_eq!(got, expect, "buffer of {cap} bytes");
        }
    }

    #[test]
    fn arrays_eventlists_records_and_pretty_documents() {
        assert_eq!(read("[{\"a\":1},{\"a\":2}]").len(), 2);
        let list = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{\"verb\":\"get\"},{\"verb\":\"list\"}]}\n";
        assert_eq!(read(list).len(), 2);
        let records = "{\n  \"Records\": [\n    {\"eventName\": \"StopLogging\", \"eventSource\": \"x\"},\n    {\"eventName\": \"B\", \"eventSource\": \"x\"}\n  ]\n}\n";
        assert_eq!(read(records).len(), 2);
        let items = read("{\n \"a\": 1\n}\n{\n \"a\": 2\n}\n");
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 2);
        assert_eq!(items[1].as_ref().map(|e| e.origin.line).ok(), Some(4));
    }

    #[test]
    fn non_object_documents_are_reported() {
        let items = read("[1, {\"a\":1}]");
        assert!(items[0].is_err());
        assert!(items[1].is_ok());
    }

    #[test]
    fn ndjson_lines_keep_their_text() {
        let evs: Vec<Event> = read("{\"z\":1,\"a\":2}\n[{\"b\":1}]\n")
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(evs[0].to_json_text(), "{\"z\":1,\"a\":2}");
        assert_eq!(evs[1].to_json_text(), "{\"b\":1}");
    }

    #[test]
    fn gzip_is_recognised_by_content() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = enc.write_all(b"{\"a\":1}\n{\"a\":2}\n");
        let bytes = enc.finish().unwrap_or_default();
        let stream = read_reader(
            "t.gz",
            Box::new(io::Cursor::new(bytes)),
            &EventOptions::default(),
        );
        assert_eq!(stream.map(|s| s.count()).unwrap_or(0), 2);
    }

    /// `lines` NDJSON lines `{"i":N}`, every `bad_every`-th one (the last of each run, never the
    /// first line: a text that starts with a bad line is read sequentially) not JSON.
    fn numbered_lines(lines: usize, bad_every: usize) -> String {
        let mut text = String::new();
        for i in 0..lines {
            if i % bad_every == bad_every - 1 {
                text.push_str("not json\n");
            } else {
                text.push_str(&format!("{{\"i\":{i}}}\n"));
            }
        }
        text
    }

    /// Everything `threads` parser threads read from `text`.
    fn read_all(text: String, opts: &EventOptions, threads: usize) -> Vec<Item> {
        read_reader_parallel("t", Box::new(io::Cursor::new(text)), opts, threads)
            .map(|s| s.collect())
            .unwrap_or_default()
    }

    /// The lines of the bad items of `read`, in the order they came.
    fn bad_lines(read: &[Item]) -> Vec<u64> {
        read.iter()
            .filter_map(|i| i.as_ref().err().map(|b| b.line))
            .collect()
    }

    /// The bad lines of [`numbered_lines`]`(lines, bad_every)`.
    fn numbered_bad_lines(lines: usize, bad_every: usize) -> Vec<u64> {
        (bad_every - 1..lines)
            .step_by(bad_every)
            .map(|i| i as u64 + 1)
            .collect()
    }

    #[test]
    fn the_ordered_hook_sees_every_chunk_in_input_order_one_at_a_time() {
        let lines = CHUNK_LINES * 23 + 5;
        // Bad lines are not events: the hook never sees them.
        let text = numbered_lines(lines, 1000);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let overlapped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, busy, both) = (seen.clone(), inside.clone(), overlapped.clone());
        let opts = EventOptions {
            ordered_hook: Some(crate::OrderedHook(Arc::new(
                move |events: &mut [&mut Event]| {
                    use std::sync::atomic::Ordering::SeqCst;
                    if busy.fetch_add(1, SeqCst) > 0 {
                        both.store(true, SeqCst);
                    }
                    // Long enough for another thread to come in, were it let in.
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    if let Ok(mut s) = s.lock() {
                        s.extend(events.iter().map(|e| e.origin.line));
                    }
                    for e in events.iter_mut() {
                        e.doc = Value::Null;
                    }
                    busy.fetch_sub(1, SeqCst);
                    crate::ChunkDone::Kept
                },
            ))),
            ..EventOptions::default()
        };
        let read = read_all(text, &opts, 4);
        let good: Vec<u64> = read
            .iter()
            .flatten()
            .map(|e| {
                assert!(e.doc.is_null(), "every event went through the hook");
                e.origin.line
            })
            .collect();
        assert_eq!(good.len(), lines - lines / 1000);
        assert_eq!(
            read.len() - good.len(),
            lines / 1000,
            "bad lines are reported"
        );
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, good, "in input order");
        assert!(good.windows(2).all(|w| w[0] < w[1]));
        assert!(!overlapped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn finished_chunks_leave_only_their_bad_lines() {
        let lines = 5_000;
        let text = numbered_lines(lines, 700);
        // Every other chunk is finished by the hook; the others go on.
        let finished = Arc::new(Mutex::new(Vec::new()));
        let f = finished.clone();
        let opts = EventOptions {
            ordered_hook: Some(crate::OrderedHook(Arc::new(
                move |events: &mut [&mut Event]| {
                    let first = events.first().and_then(|e| e.doc["i"].as_u64());
                    if first.is_some_and(|i| !(i / CHUNK_LINES as u64).is_multiple_of(2)) {
                        if let Ok(mut f) = f.lock() {
                            f.extend(events.iter().map(|e| e.origin.line));
                        }
                        crate::ChunkDone::Finished
                    } else {
                        crate::ChunkDone::Kept
                    }
                },
            ))),
            ..EventOptions::default()
        };
        let read = read_all(text, &opts, 3);
        let bad = bad_lines(&read);
        assert_eq!(
            bad,
            numbered_bad_lines(lines, 700),
            "every bad line is reported, in order"
        );
        let kept: Vec<u64> = read.iter().flatten().map(|e| e.origin.line).collect();
        let finished = finished.lock().map(|f| f.clone()).unwrap_or_default();
        assert!(!finished.is_empty() && !kept.is_empty());
        assert!(kept.iter().all(|l| !finished.contains(l)));
        let mut all: Vec<u64> = kept.iter().chain(&finished).copied().collect();
        all.sort_unstable();
        all.extend(&bad);
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=lines as u64).collect::<Vec<_>>(),
            "no line is lost"
        );
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "kept events in input order"
        );
    }

    /// Lines of text, then a read error.
    struct FailingReader {
        text: io::Cursor<Vec<u8>>,
    }

    impl io::Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.text.read(buf)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn parallel_reading_ends_at_whole_chunks_and_at_read_errors() {
        let lines = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| format!("{{\"i\":{i}}}\n").into_bytes())
                .collect()
        };
        let opts = EventOptions::default();
        for threads in [2, 3] {
            // Exactly three chunks: the end is met by the reader of a fourth, empty one.
            let whole: Vec<Item> = read_reader_parallel(
                "t",
                Box::new(io::Cursor::new(lines(CHUNK_LINES * 3))),
                &opts,
                threads,
            )
            .map(|s| s.collect())
            .unwrap_or_default();
            let numbers: Vec<u64> = whole.iter().flatten().map(|e| e.origin.line).collect();
            assert_eq!(numbers, (1..=CHUNK_LINES as u64 * 3).collect::<Vec<_>>());
            assert_eq!(whole.len(), numbers.len());
            // A read error after two chunks and a half: what was read, then the error.
            let failing = FailingReader {
                text: io::Cursor::new(lines(CHUNK_LINES * 5 / 2)),
            };
            let read: Vec<Item> =
                read_reader_parallel("t", Box::new(io::BufReader::new(failing)), &opts, threads)
                    .map(|s| s.collect())
                    .unwrap_or_default();
            let (good, bad): (Vec<_>, Vec<_>) = read.iter().partition(|i| i.is_ok());
            assert_eq!(good.len(), CHUNK_LINES * 5 / 2, "{threads} threads");
            assert_eq!(bad.len(), 1);
            let last = read.last().and_then(|i| i.as_ref().err());
            assert!(
                last.is_some_and(|b| b.message.contains("disk on fire")
                    && b.line == CHUNK_LINES as u64 * 5 / 2 + 1),
                "{last:?}"
            );
        }
    }

    #[test]
    fn chunks_finished_by_the_ordered_hook_reach_the_consumer_only_with_bad_lines() {
        // With every event finished on the parser threads, nothing is sent for a chunk without
        // bad lines: the end must still be found, after the last chunk's bad lines, and a read
        // error still reported last.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let opts = EventOptions {
            ordered_hook: Some(crate::OrderedHook(Arc::new(
                move |events: &mut [&mut Event]| {
                    if let Ok(mut s) = s.lock() {
                        s.extend(events.iter().map(|e| e.origin.line));
                    }
                    crate::ChunkDone::Finished
                },
            ))),
            ..EventOptions::default()
        };
        for threads in [2, 3, 5] {
            for lines in [CHUNK_LINES * 3, CHUNK_LINES * 3 + 7, CHUNK_LINES - 1] {
                if let Ok(mut s) = seen.lock() {
                    s.clear();
                }
                let read = read_all(numbered_lines(lines, 300), &opts, threads);
                let bad = bad_lines(&read);
                let expected = numbered_bad_lines(lines, 300);
                assert_eq!(bad, expected, "{threads} threads, {lines} lines");
                assert_eq!(read.len(), bad.len(), "only bad lines come out");
                let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
                assert_eq!(seen.len(), lines - expected.len());
                assert!(seen.windows(2).all(|w| w[0] < w[1]), "in input order");
            }
            let failing = FailingReader {
                text: io::Cursor::new(numbered_lines(CHUNK_LINES * 5 / 2, 300).into_bytes()),
            };
            let read: Vec<Item> =
                read_reader_parallel("t", Box::new(io::BufReader::new(failing)), &opts, threads)
                    .map(|s| s.collect())
                    .unwrap_or_default();
            let lines: Vec<(u64, bool)> = read
                .iter()
                .filter_map(|i| i.as_ref().err())
                .map(|b| (b.line, b.message.contains("disk on fire")))
                .collect();
            assert_eq!(
                lines,
                [
                    (300, false),
                    (600, false),
                    (CHUNK_LINES as u64 * 5 / 2 + 1, true)
                ],
                "{threads} threads"
            );
        }
    }

    #[test]
    fn parallel_reader_matches_sequential() {
        let dir = std::env::temp_dir().join(format!("ruleatlas-par-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("events.ndjson");
        let mut text = Vec::new();
        let mut blank = 0;
        for i in 0..10_000 {
            if i % 997 == 0 {
                text.extend_from_slice(b"garbage\n");
            } else if i % 1499 == 0 {
                // Not UTF-8: reported with its line, the rest is read.
                text.extend_from_slice(b"{\"i\":\"\xff\xfe\"}\n");
            } else if i % 1201 == 0 {
                // Blank lines (one with CRLF) yield nothing, but count as lines.
                text.extend_from_slice(b"  \r\n");
                blank += 1;
            } else if i % 701 == 0 {
                text.extend_from_slice(format!("{{\"crlf\":{i}}}\r\n").as_bytes());
            } else {
                text.extend_from_slice(format!("{{\"i\":{i}}}\n").as_bytes());
            }
        }
        // The last line has no newline.
        text.extend_from_slice(b"{\"last\":true}");
        let _ = std::fs::write(&path, &text);
        let p = path.display().to_string();
        let key = |it: Item| match it {
            Ok(e) => format!("ok {} {} {}", e.seq, e.origin.line, e.doc),
            Err(b) => format!("bad {}", b),
        };
        let seq: Vec<String> = read_events(&p, &EventOptions::default())
            .map(|s| s.map(key).collect())
            .unwrap_or_default();
        let par: Vec<String> = read_events_parallel(&p, &EventOptions::default(), 3)
            .map(|s| s.map(key).collect())
            .unwrap_or_default();
        assert_eq!(seq.len(), 10_000 - blank + 1);
        assert_eq!(seq, par);
        assert!(
            seq.last()
                .is_some_and(|l| l.ends_with(r#" 10001 {"last":true}"#)),
            "{:?}",
            seq.last()
        );
        assert!(
            seq.iter()
                .any(|l| l.contains(":1500:7: line is not valid UTF-8 (byte 7)")),
            "{:?}",
            &seq[1495..1502]
        );
        // A first line that is not UTF-8: reported, the rest read.
        let first = dir.join("first.ndjson");
        let _ = std::fs::write(&first, b"{\"a\":\"\xff\"}\n{\"i\":1}\n{\"i\":2}\n");
        let f = first.display().to_string();
        for threads in [1, 2] {
            let items: Vec<String> = read_events_parallel(&f, &EventOptions::default(), threads)
                .map(|s| s.map(key).collect())
                .unwrap_or_default();
            assert_eq!(items.len(), 3, "{items:?}");
            assert!(
                items[0].starts_with("bad ") && items[0].contains(":1:7:"),
                "{items:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
