//! Projected parsing straight from the text: one pass over the line that validates what no rule
//! reads and writes what the projection keeps into a spare document, without building a
//! document of the whole line first.
//!
//! Why: through sonic-rs a kept value is handled three times — parsed into sonic-rs's document,
//! found again by the walk that copies it out, copied. Building sonic-rs's document of a whole
//! audit Event (request and response objects included) costs about as much as the copy. Here a
//! skipped value is only validated (a string's end found by a bit search in the marks one sweep
//! of vector compares made of the line's quotes and backslashes) and a kept one is written once.
//!
//! Contract (tested against sonic-rs on awkward documents, on every sample line of the corpora and
//! on random mutations of them): when [`refill`] returns `Ok`, the text is valid JSON — sonic-rs
//! accepts it — and `out` holds exactly what the sonic-rs path ([`super::refill`]) would have made,
//! whatever `out` held before. Anything this path does not take on — control bytes (tabs between
//! tokens included), a key with escapes where keys are looked up, exponents, integers of more than
//! 18 digits, `-0`, `\u` escapes of surrogates, nesting deeper than 128, or any error — is
//! [`Declined`], and the caller parses the text with sonic-rs, whose answer (value or error) is
//! the one that counts. `out` is then left half written, which a refill does not mind.

use super::{walk_dotted, Node};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The text is not one this path takes (see the module's contract): parse it with sonic-rs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Declined;

type Step<T = ()> = Result<T, Declined>;

/// Deeper nesting is declined (sonic-rs and serde_json have their own limits).
const MAX_DEPTH: u32 = 128;

/// Makes `out` the part of the JSON `text` that `node` names (`None`: all of it), keeping the
/// allocations of `out` where its shape agrees. Only objects are taken at the top level.
pub(super) fn refill(node: Option<&Node>, text: &str, out: &mut Value) -> Step {
    let bytes = text.as_bytes();
    // JSON allows no byte below 0x20 in a string and only tab, line feed and carriage return
    // between tokens: a text without any (nearly every line; the marking checks) needs no check
    // of them anywhere else, so a string's end is its next quote or backslash. Lines of up to
    // 2 KB (nearly all) keep their marks on the stack.
    let mut small = [0u64; 32];
    let mut large = Vec::new();
    let words = bytes.len().div_ceil(64);
    let marks = match small.get_mut(..words) {
        Some(marks) => marks,
        None => {
            large.resize(words, 0);
            &mut large[..]
        }
    };
    if !string_marks(bytes, marks) {
        return Err(Declined);
    }
    let mut c = Cursor {
        text,
        bytes,
        marks,
        at: 0,
        depth: 0,
    };
    c.spaces();
    if c.peek() != Some(b'{') {
        return Err(Declined);
    }
    c.value(node, out)?;
    c.spaces();
    if c.at != bytes.len() {
        return Err(Declined);
    }
    Ok(())
}

/// Writes in `marks` (64 bytes a word, `bytes.len().div_ceil(64)` words) one bit per byte of
/// `bytes`, at every quote and backslash: where a string may end, found for the whole line in one
/// pass of 16-byte vector compares (`wide`'s safe SIMD types), so that a string's end is then a
/// bit search. False when some byte is below 0x20 (see [`refill`]).
fn string_marks(bytes: &[u8], marks: &mut [u64]) -> bool {
    use wide::u8x16;
    let quote = u8x16::splat(b'"');
    let backslash = u8x16::splat(b'\\');
    let space = u8x16::splat(b' ');
    let mut control = u8x16::splat(0);
    // A word of marks per 64 bytes, four vector compares combined.
    let mut word_of = |block: &[u8]| -> u64 {
        let mut w = 0u64;
        for (i, part) in block.chunks_exact(16).enumerate() {
            let mut lanes = [0u8; 16];
            lanes.copy_from_slice(part);
            let v = u8x16::from(lanes);
            control |= v.simd_lt(space);
            w |= u64::from((v.simd_eq(quote) | v.simd_eq(backslash)).to_bitmask()) << (16 * i);
        }
        w
    };
    let mut blocks = bytes.chunks_exact(64);
    for (word, block) in marks.iter_mut().zip(&mut blocks) {
        *word = word_of(block);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padded with a byte that is neither a mark nor a control byte.
        let mut block = [b' '; 64];
        block[..rest.len()].copy_from_slice(rest);
        if let Some(word) = marks.get_mut(bytes.len() / 64) {
            *word = word_of(&block);
        }
    }
    !control.any()
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// [`string_marks`] of `bytes`.
    marks: &'a [u64],
    at: usize,
    depth: u32,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips spaces (the only whitespace left: the text holds no control byte). Most texts have
    /// none between tokens: one test, the loop out of line.
    #[inline(always)]
    fn spaces(&mut self) {
        if self.bytes.get(self.at) == Some(&b' ') {
            self.skip_spaces();
        }
    }

    #[cold]
    fn skip_spaces(&mut self) {
        while self.bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    /// Consumes `byte` after optional spaces.
    fn expect(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.at += 1;
            return Ok(());
        }
        self.spaces();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// After an item of a container: steps over the comma before the next item (false) or over
    /// the container's `close` (true).
    fn closes(&mut self, close: u8) -> Step<bool> {
        self.spaces();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(true)
            }
            _ => Err(Declined),
        }
    }

    fn enter(&mut self) -> Step {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Declined);
        }
        Ok(())
    }

    /// Refills `out` with the value at the cursor (after optional spaces), kept as `node` says.
    fn value(&mut self, node: Option<&Node>, out: &mut Value) -> Step {
        self.spaces();
        match self.peek() {
            Some(b'{') => self.object(node, out),
            Some(b'[') => self.array(node, out),
            Some(b'"') => match out {
                // Written over the old string: no string of its own for one with escapes.
                Value::String(old) => self.string_into(old),
                _ => {
                    *out = Value::String(self.string()?.into_owned());
                    Ok(())
                }
            },
            Some(b't') => self.literal(b"true").map(|()| *out = Value::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| *out = Value::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| *out = Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let (text, integer) = self.number()?;
                *out = number_value(text, integer)?;
                Ok(())
            }
            _ => Err(Declined),
        }
    }

    fn object(&mut self, node: Option<&Node>, out: &mut Value) -> Step {
        self.enter()?;
        self.at += 1;
        if !matches!(out, Value::Object(_)) {
            *out = Value::Object(Map::new());
        }
        let Value::Object(map) = out else {
            return Err(Declined);
        };
        // The entries `out` holds, in the map's (byte) order, each refilled in place when the
        // text has its key: a lookup here is one comparison when keys come in the order of the
        // last document's, a binary search otherwise (a B-tree lookup per key cost several
        // string comparisons each). Keys the map lacks wait in `added` until the entries are
        // let go of; entries no key met are removed at the end.
        // Filled where it stands: `collect` built the vector and then moved it here, a copy of
        // its ~1 KB of inline room for every kept object of every event.
        let mut entries: SmallVec<[(&str, &mut Value, bool); 24]> = SmallVec::new();
        entries.extend(map.iter_mut().map(|(k, v)| (k.as_str(), v, false)));
        let mut added: SmallVec<[(Cow<'a, str>, Value); 4]> = SmallVec::new();
        let mut next = 0;
        self.spaces();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                self.spaces();
                if self.peek() != Some(b'"') {
                    return Err(Declined);
                }
                let (key, child) = match node {
                    None => (Some(self.string()?), None),
                    Some(n) => {
                        // Keys are looked up as written: one with escapes could name a child
                        // once unescaped, which this path leaves to sonic-rs.
                        let key = self.plain_string()?;
                        match n.child(key).or_else(|| walk_dotted(n, key)) {
                            Some(c) => (Some(Cow::Borrowed(key)), (!c.whole).then_some(c)),
                            None => (None, None),
                        }
                    }
                };
                self.expect(b':')?;
                match key {
                    None => self.skip_value()?,
                    Some(key) => match find(&entries, next, &key) {
                        Some(i) => {
                            let entry = &mut entries[i];
                            entry.2 = true;
                            self.value(child, entry.1)?;
                            next = i + 1;
                        }
                        None => match added.iter_mut().find(|(k, _)| *k == key) {
                            // A repeated key: the last value wins.
                            Some((_, v)) => self.value(child, v)?,
                            None => {
                                let mut v = Value::Null;
                                self.value(child, &mut v)?;
                                added.push((key, v));
                            }
                        },
                    },
                }
                if self.closes(b'}')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        if entries.iter().any(|e| !e.2) {
            let kept: SmallVec<[bool; 24]> = entries.iter().map(|e| e.2).collect();
            drop(entries);
            // `retain` visits the entries in the same order.
            let mut at = 0;
            map.retain(|_, _| {
                at += 1;
                kept.get(at - 1).copied().unwrap_or(true)
            });
        } else {
            drop(entries);
        }
        // (Most objects add nothing: no iterator over the vector, which would move it.)
        if !added.is_empty() {
            for (k, v) in added {
                map.insert(k.into_owned(), v);
            }
        }
        Ok(())
    }

    fn array(&mut self, node: Option<&Node>, out: &mut Value) -> Step {
        self.enter()?;
        self.at += 1;
        if !matches!(out, Value::Array(_)) {
            *out = Value::Array(Vec::new());
        }
        let Value::Array(items) = out else {
            return Err(Declined);
        };
        // Elements indexed by position: arrays kept whole (as the sonic-rs path does).
        let node = node.filter(|n| !n.indexes_arrays());
        let mut len = 0;
        self.spaces();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                match items.get_mut(len) {
                    Some(old) => self.value(node, old)?,
                    None => {
                        let mut v = Value::Null;
                        self.value(node, &mut v)?;
                        items.push(v);
                    }
                }
                len += 1;
                if self.closes(b']')? {
                    break;
                }
            }
        }
        items.truncate(len);
        self.depth -= 1;
        Ok(())
    }

    /// Validates the value at the cursor (after optional spaces) and steps over it.
    fn skip_value(&mut self) -> Step {
        self.spaces();
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{') => {
                self.enter()?;
                self.at += 1;
                self.spaces();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        self.spaces();
                        if self.peek() != Some(b'"') {
                            return Err(Declined);
                        }
                        self.skip_string()?;
                        self.expect(b':')?;
                        self.skip_value()?;
                        if self.closes(b'}')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Some(b'[') => {
                self.enter()?;
                self.at += 1;
                self.spaces();
                if self.peek() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        self.skip_value()?;
                        if self.closes(b']')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => Err(Declined),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// Steps over a number: its text and whether it is an integer. Exponents, integers of more
    /// than 18 digits and `-0` are declined (their values are left to sonic-rs's rules).
    fn number(&mut self) -> Step<(&'a str, bool)> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Declined),
        }
        let int_digits = self.at - digits;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let frac = self.at;
            self.digits();
            if self.at == frac {
                return Err(Declined);
            }
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return Err(Declined);
        }
        let text = self.text.get(start..self.at).ok_or(Declined)?;
        if integer && (int_digits > 18 || text == "-0") {
            return Err(Declined);
        }
        Ok((text, integer))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// The string at the cursor (at its opening quote), borrowed when it has no escapes.
    fn string(&mut self) -> Step<Cow<'a, str>> {
        let start = self.at + 1;
        let end = self.string_end(start)?;
        if self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            return self.text.get(start..end).map(Cow::Borrowed).ok_or(Declined);
        }
        // Escapes: unescaped into a new string (the cursor has not moved).
        let mut s = String::new();
        self.string_into(&mut s)?;
        Ok(Cow::Owned(s))
    }

    /// [`Self::string`] written over `out` (whatever it held).
    fn string_into(&mut self, out: &mut String) -> Step {
        out.clear();
        let start = self.at + 1;
        let mut end = self.string_end(start)?;
        out.push_str(self.text.get(start..end).ok_or(Declined)?);
        while self.bytes.get(end) == Some(&b'\\') {
            let (ch, next) = self.escape(end)?;
            out.push(ch);
            end = self.string_end(next)?;
            out.push_str(self.text.get(next..end).ok_or(Declined)?);
        }
        self.at = end + 1;
        Ok(())
    }

    /// The string at the cursor, which must have no escapes.
    fn plain_string(&mut self) -> Step<&'a str> {
        let start = self.at + 1;
        let end = self.string_end(start)?;
        if self.bytes.get(end) != Some(&b'"') {
            return Err(Declined);
        }
        self.at = end + 1;
        self.text.get(start..end).ok_or(Declined)
    }

    /// Validates the string at the cursor and steps over it.
    fn skip_string(&mut self) -> Step {
        let mut at = self.string_end(self.at + 1)?;
        while self.bytes.get(at) == Some(&b'\\') {
            let (_, next) = self.escape(at)?;
            at = self.string_end(next)?;
        }
        self.at = at + 1;
        Ok(())
    }

    /// The position of the next quote or backslash from `from` (no string of this text holds a
    /// control byte); declined at the end of the text.
    fn string_end(&self, from: usize) -> Step<usize> {
        let mut word = from / 64;
        let mut bits = self.marks.get(word).ok_or(Declined)? & (u64::MAX << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.marks.get(word).ok_or(Declined)?;
        }
        Ok(word * 64 + bits.trailing_zeros() as usize)
    }

    /// The character of the escape at `at` (a backslash) and the position after it.
    fn escape(&self, at: usize) -> Step<(char, usize)> {
        let ch = match self.bytes.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hex = self.text.get(at + 2..at + 6).ok_or(Declined)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Declined);
                }
                let code = u32::from_str_radix(hex, 16).map_err(|_| Declined)?;
                // Surrogates (halves of a pair, or lone ones) are left to sonic-rs.
                let ch = char::from_u32(code).ok_or(Declined)?;
                return Ok((ch, at + 6));
            }
            _ => return Err(Declined),
        };
        Ok((ch, at + 2))
    }
}

/// The position of `key` among `entries` (sorted by key): `hint` first, the position after the
/// last one found.
fn find(entries: &[(&str, &mut Value, bool)], hint: usize, key: &str) -> Option<usize> {
    if let Some(e) = entries.get(hint) {
        if crate::names::same(e.0.as_bytes(), key.as_bytes()) {
            return Some(hint);
        }
    }
    entries.binary_search_by(|e| e.0.cmp(key)).ok()
}

/// A kept number as the sonic-rs path makes it: integers as `u64` when not negative, `i64` when
/// negative (18 digits at most here, so both fit), fractions by sonic-rs's own float parsing.
fn number_value(text: &str, integer: bool) -> Step<Value> {
    if integer {
        return match text.strip_prefix('-') {
            Some(_) => text.parse::<i64>().map(Value::from).map_err(|_| Declined),
            None => text.parse::<u64>().map(Value::from).map_err(|_| Declined),
        };
    }
    let v: sonic_rs::Value = sonic_rs::from_str(text).map_err(|_| Declined)?;
    Ok(super::scalar_from_sonic(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::tests::projection;
    use crate::projection::Projection;
    use ruleatlas_ir::FieldPath;

    /// The sonic-rs path's answer for `text` refilled into `before`.
    fn sonic(p: &Projection, text: &str, before: &Value) -> Option<Value> {
        let dom: sonic_rs::Value = sonic_rs::from_str(text).ok()?;
        let mut doc = before.clone();
        super::super::refill(p.kept_root(), &dom, &mut doc);
        Some(doc)
    }

    /// The contract: taken ⇒ sonic-rs accepts the text and the documents agree.
    fn check(p: &Projection, text: &str, before: &Value) -> bool {
        let mut doc = before.clone();
        let taken = refill(p.kept_root(), text, &mut doc).is_ok();
        if taken {
            let expected = sonic(p, text, before);
            assert_eq!(Some(&doc), expected.as_ref(), "{text:?} after {before}");
        }
        taken
    }

    fn projections() -> Vec<Projection> {
        let mut with_positions = projection(&[
            "verb",
            "objectRef.resource",
            "objectRef.namespace",
            "user",
            "requestObject.spec.containers.image",
            "a.b.c",
            "n",
            "f",
            "w",
        ]);
        assert!(with_positions.add_field(&FieldPath::exact(vec![
            "annotations".into(),
            "authorization.k8s.io/decision".into()
        ])));
        assert!(with_positions.add_field(&FieldPath::exact(vec![
            "requestObject".into(),
            "ephemeralContainers".into(),
            "0".into(),
            "name".into(),
        ])));
        vec![
            projection(&["verb", "objectRef.resource"]),
            with_positions,
            projection(&[""]),
        ]
    }

    const TEXTS: &[&str] = &[
        r#"{"verb":"get","objectRef":{"resource":"pods","name":"p"},"user":{"username":"u","groups":["a","b"]}}"#,
        r#"{"verb":"create","objectRef":{"resource":"pods"},"user":{"username":"longer-user-name","groups":["a"]},"requestObject":{"spec":{"containers":[{"image":"x"},{"image":"y","args":["1"]}]},"ephemeralContainers":[{"name":"dbg"}]}}"#,
        r#"{"verb":"delete","user":{"username":"u","groups":[]},"objectRef":"not an object","annotations":{"authorization.k8s.io/decision":"allow"}}"#,
        r#"{"verb":1,"verb":"patch","objectRef":{"resource":null,"resource":"services","namespace":"ns"},"user":["odd"],"a.b":{"c":2},"a":{"b.c":3}}"#,
        r#"{"verb":"list","objectRef":{"resource":"secrets"},"requestObject":{"spec":{"containers":[]}},"user":{"username":"","groups":[1,2.5,-3,true,null,{"x":"y"}]}}"#,
        r#"{"user":{"groups":["z"],"username":"w"},"requestObject":{"spec":{"containers":[{"image":"i"}]}},"objectRef":{"namespace":"n","resource":"r","resource":"s"},"verb":"watch","user":{"username":"again"}}"#,
        r#"{}"#,
        r#"{ "verb" : "get" , "n" : -12 , "f" : 0.25 , "x" : [ 1 , { } , [ ] ] }"#,
        r#"{"verb":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac","user":{"k\u00e9y":"v\u0041","g":"\"q\""},"skip":"\u00e9\"x\\"}"#,
        r#"{"w":{"deep":{"er":[1,{"x":"\"q\"\n"}]}},"a":{"b":null},"n":18446744073709551615}"#,
        r#"{"n":123456789012345678,"f":-1.5e3}"#,
        r#"{"n":-0,"verb":"x"}"#,
        r#"{"verb":"\ud83d\ude00"}"#,
        r#"{"\u0076erb":"escaped key"}"#,
        "{\"verb\":\"tab\tinside\"}",
        "{\"verb\":\"x\",\t\"n\":1}",
        r#"{"verb":"get","x":{"y":tru}}"#,
        r#"{"verb":"get"} trailing"#,
        r#"{"verb":"get""#,
        r#"{"verb":"get",}"#,
        r#"{"verb":01}"#,
        r#"{"verb":1.}"#,
        r#"{"verb":"\x"}"#,
        r#"{"verb":"\u12"}"#,
        r#"[1,{"verb":"x"}]"#,
        r#""scalar""#,
        "",
        "   ",
        "{\"verb\":\"é ünïcödé ✓\",\"user\":{\"name\":\"日本\"}}",
    ];

    #[test]
    fn taken_texts_read_as_through_sonic_rs_whatever_the_document_held() {
        let mut taken = 0;
        for p in projections() {
            for before in TEXTS {
                let before = sonic(&p, before, &Value::Null).unwrap_or(Value::Null);
                for text in TEXTS {
                    taken += usize::from(check(&p, text, &before));
                }
                // And a whole earlier document (the richest shape).
                let whole = sonic(&projection(&[""]), TEXTS[1], &Value::Null).unwrap_or_default();
                for text in TEXTS {
                    check(&p, text, &whole);
                }
            }
        }
        // Most of the valid texts are taken (a test that declined everything would pass above).
        assert!(taken >= 3 * TEXTS.len() * 10, "taken {taken}");
    }

    #[test]
    fn string_marks_are_the_quotes_and_backslashes() {
        // Every length up to three words, a mark or a control byte at every position (the
        // vector steps, the padded tail), and bytes above 0x7f, which are no control bytes.
        for len in 0..200 {
            for at in 0..len {
                for (byte, marked) in [(b'"', true), (b'\\', true), (0xc3, false), (b'a', false)] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = byte;
                    let mut marks = vec![0; len.div_ceil(64)];
                    assert!(string_marks(&bytes, &mut marks), "no control byte");
                    for i in 0..len {
                        let bit = marks[i / 64] >> (i % 64) & 1 == 1;
                        assert_eq!(
                            bit,
                            marked && i == at,
                            "len {len}, byte {byte} at {at}, bit {i}"
                        );
                    }
                }
                for control in [0u8, b'\t', b'\n', 0x1f] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = control;
                    let mut marks = vec![0; len.div_ceil(64)];
                    assert!(
                        !string_marks(&bytes, &mut marks),
                        "len {len}, {control} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn what_is_declined() {
        let p = projection(&["verb"]);
        let declined = |text: &str| refill(p.kept_root(), text, &mut Value::Null).is_err();
        // Invalid JSON, in kept and in skipped parts.
        for text in [
            r#"{"verb":"get","x":{"y":tru}}"#,
            r#"{"verb":"get"} trailing"#,
            r#"{"verb":"get""#,
            r#"{"x":[1,2,]}"#,
            r#"{"x":[1 2]}"#,
            r#"{"x":"\q"}"#,
            r#"{"x":"\u00g0"}"#,
            r#"{"x":--1}"#,
            r#"{"x":1.}"#,
            r#"{"x":01}"#,
            r#"{"x" 1}"#,
            r#"{x:1}"#,
            "{\"x\":\"a\u{1}b\"}",
            "",
        ] {
            assert!(declined(text), "{text:?}");
            assert!(
                sonic_rs::from_str::<sonic_rs::Value>(text).is_err(),
                "{text:?}"
            );
        }
        // Valid, but left to sonic-rs.
        for text in [
            "{\"verb\":\"x\",\t\"n\":1}",
            r#"{"x":1e3}"#,
            r#"{"x":1234567890123456789}"#,
            r#"{"x":-0}"#,
            r#"{"x":"\ud83d\ude00"}"#,
            r#"{"v\u0065rb":"x"}"#,
            r#"[{"verb":"x"}]"#,
        ] {
            assert!(declined(text), "{text:?}");
            assert!(
                sonic_rs::from_str::<sonic_rs::Value>(text).is_ok(),
                "{text:?}"
            );
        }
        // Nesting: 128 levels taken, 129 declined.
        let nested = |n: usize| format!("{{\"x\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(!declined(&nested(128)));
        assert!(declined(&nested(129)));
    }

    /// Deterministic pseudo-random numbers (xorshift), so a failure is reproducible.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn mutated_texts_keep_the_contract() {
        // Bytes dropped, repeated or replaced by JSON's structural characters: whatever is
        // taken must be valid and read alike.
        const ALPHABET: &[u8] = b"{}[]\":,\\ 0-.eE1tnfu\xc3\xa9a";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut taken = 0;
        for p in projections() {
            for text in TEXTS {
                let base = text.as_bytes();
                if base.is_empty() {
                    continue;
                }
                for _ in 0..300 {
                    let mut bytes = base.to_vec();
                    for _ in 0..=(xorshift(&mut state) % 3) {
                        let at = (xorshift(&mut state) as usize) % bytes.len().max(1);
                        let pick = ALPHABET[(xorshift(&mut state) as usize) % ALPHABET.len()];
                        match xorshift(&mut state) % 3 {
                            0 if !bytes.is_empty() => {
                                bytes.remove(at);
                            }
                            1 => bytes.insert(at, pick),
                            _ if at < bytes.len() => bytes[at] = pick,
                            _ => {}
                        }
                    }
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        continue;
                    };
                    taken += usize::from(check(&p, text, &Value::Null));
                }
            }
        }
        assert!(taken > 100, "taken {taken}");
    }

    /// The vector marking agrees with a byte-by-byte one for every length around the 16- and
    /// 64-byte steps, marks at every position, and control bytes anywhere.
    #[test]
    fn string_marks_agree_with_a_byte_by_byte_marking() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300usize {
            for _ in 0..4 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| match xorshift(&mut state) % 8 {
                        0 => b'"',
                        1 => b'\\',
                        2 if xorshift(&mut state).is_multiple_of(16) => b'\t',
                        _ => b'a' + (xorshift(&mut state) % 26) as u8,
                    })
                    .collect();
                let words = len.div_ceil(64);
                let mut marks = vec![0u64; words];
                let clean = string_marks(&bytes, &mut marks);
                let mut expected = vec![0u64; words];
                for (i, b) in bytes.iter().enumerate() {
                    if *b == b'"' || *b == b'\\' {
                        expected[i / 64] |= 1 << (i % 64);
                    }
                }
                assert_eq!(marks, expected, "{len}: {bytes:?}");
                assert_eq!(clean, !bytes.iter().any(|b| *b < 0x20), "{len}");
            }
        }
    }
}
