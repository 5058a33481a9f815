//! Readers: files and streams to events.
//!
//! Accepted shapes, recognised from the content, not the file name: NDJSON (one document per
//! line), a JSON array of documents, concatenated JSON documents, an audit `EventList`
//! (`{"kind":"EventList","items":[…]}`), a CloudTrail file (`{"Records":[…]}`); any of them
//! gzip-compressed (recognised by its magic bytes). `-` reads standard input.
//!
//! Bad input is normal input: a line that is not JSON, or a document that is not an object, is
//! yielded as a [`BadEvent`] with its location and reading goes on with the next line.

use crate::{Event, EventOptions, Origin};
use ruleatlas_ir::LineIndex;
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

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

/// Opens `path` (`-` for stdin) and returns its events.
pub fn read_events(path: &str, opts: &EventOptions) -> Result<EventStream, InputError> {
    let err = |source| InputError {
        path: path.to_string(),
        source,
    };
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(err)?)
    };
    read_reader(path, raw, opts).map_err(err)
}

/// Reads events from any byte stream; `name` is used in locations.
pub fn read_reader(
    name: &str,
    raw: Box<dyn Read + Send>,
    opts: &EventOptions,
) -> io::Result<EventStream> {
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered.fill_buf()?;
    let reader: Box<dyn BufRead + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok(EventStream {
        name: Arc::from(name),
        reader,
        opts: opts.clone(),
        mode: Mode::Detect,
        line: 0,
        seq: 0,
        pending: VecDeque::new(),
        buf: String::new(),
        failed: false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Detect,
    Lines,
    Done,
}

/// Iterator over the events of one input, in input order.
pub struct EventStream {
    name: Arc<str>,
    reader: Box<dyn BufRead + Send>,
    opts: EventOptions,
    mode: Mode,
    line: u64,
    seq: u64,
    pending: VecDeque<Result<Event, BadEvent>>,
    buf: String,
    failed: bool,
}

impl EventStream {
    fn bad(&self, line: u64, column: u64, message: String) -> BadEvent {
        BadEvent {
            path: self.name.to_string(),
            line,
            column,
            message,
        }
    }

    /// Expands wrappers (arrays, EventList, Records) into events, queued in `pending`.
    fn push_document(&mut self, doc: Value, line: u64) {
        match doc {
            Value::Array(items) => items
                .into_iter()
                .for_each(|it| self.push_document(it, line)),
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
                            .for_each(|it| self.push_document(it, line));
                    }
                    return;
                }
                let mut ev = Event::new(Value::Object(map), &self.opts);
                ev.seq = self.seq;
                ev.origin = Origin {
                    file: self.name.clone(),
                    line,
                };
                self.seq += 1;
                self.pending.push_back(Ok(ev));
            }
            other => {
                let what = match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    _ => "a value",
                };
                let bad = self.bad(
                    line,
                    1,
                    format!("expected a JSON object (an event), found {what}"),
                );
                self.pending.push_back(Err(bad));
            }
        }
    }

    fn read_line(&mut self) -> Option<io::Result<()>> {
        self.buf.clear();
        match self.reader.read_line(&mut self.buf) {
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
            let bad = self.bad(first_line, 1, format!("cannot read input: {e}"));
            self.pending.push_back(Err(bad));
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
                    self.push_document(doc, doc_line);
                }
                Some(Err(e)) => {
                    let bad = self.bad(
                        e.line() as u64 + base,
                        e.column() as u64,
                        format!("invalid JSON: {e}"),
                    );
                    self.pending.push_back(Err(bad));
                    break;
                }
            }
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, BadEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.mode == Mode::Done || self.failed {
                return None;
            }
            if let Err(e) = self.read_line()? {
                self.failed = true;
                let line = self.line + 1;
                return Some(Err(self.bad(line, 1, format!("cannot read input: {e}"))));
            }
            let trimmed = self.buf.trim();
            if trimmed.is_empty() {
                continue;
            }
            let line = self.line;
            match serde_json::from_str::<Value>(trimmed) {
                Ok(doc) => {
                    self.mode = Mode::Lines;
                    let before = self.pending.len();
                    let single = doc.is_object();
                    self.push_document(doc, line);
                    // A plain one-event line keeps its text; wrappers expanded into several don't.
                    if single && self.pending.len() == before + 1 {
                        let raw: Arc<str> = Arc::from(self.buf.trim());
                        if let Some(Ok(ev)) = self.pending.back_mut() {
                            ev.raw = Some(raw);
                        }
                    }
                }
                Err(e) if self.mode == Mode::Detect && (e.is_eof() || trimmed.starts_with('[')) => {
                    // The first document spans several lines: a pretty-printed file.
                    self.mode = Mode::Done;
                    let first = std::mem::take(&mut self.buf);
                    self.read_whole(first, line);
                }
                Err(e) => {
                    self.mode = Mode::Lines;
                    let leading = self.buf.len() - self.buf.trim_start().len();
                    let col = e.column() as u64 + leading as u64;
                    return Some(Err(self.bad(
                        line,
                        col.max(1),
                        format!("invalid JSON: {e}"),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Event, BadEvent>> {
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
    fn arrays_eventlists_records_and_pretty_documents() {
        let items = read("[{\"a\":1},{\"a\":2}]");
        assert_eq!(items.len(), 2);
        let items = read("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{\"verb\":\"get\"},{\"verb\":\"list\"}]}\n");
        assert_eq!(items.len(), 2);
        let items = read("{\n  \"Records\": [\n    {\"eventName\": \"StopLogging\", \"eventSource\": \"x\"},\n    {\"eventName\": \"B\", \"eventSource\": \"x\"}\n  ]\n}\n");
        assert_eq!(items.len(), 2);
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
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    #[test]
    fn ndjson_lines_keep_their_text() {
        let text = "{\"z\":1,\"a\":2}\n[{\"b\":1}]\n";
        let stream = read_reader(
            "t",
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            &EventOptions::default(),
        );
        let evs: Vec<Event> = stream
            .map(|s| s.filter_map(Result::ok).collect())
            .unwrap_or_default();
        assert_eq!(evs[0].to_json_text(), "{\"z\":1,\"a\":2}");
        assert_eq!(evs[1].to_json_text(), "{\"b\":1}");
    }
}
