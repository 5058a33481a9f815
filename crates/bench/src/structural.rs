//! A measurement, not a parser the product uses: what a simdjson-shaped validation of a line costs
//! on this machine with safe 16-byte vectors — stage 1 finds every structural character outside
//! strings and both quotes of every string, 64 bytes at a time; stage 2 walks those positions and
//! checks the grammar, every scalar and every escape, building nothing. `docs/hunt.md` ("The next
//! factor of two", step 0) asks whether a projected parse of this shape can cost half of
//! sonic-rs's document; this is its floor: the walk with nothing kept.
//!
//! Contract (tested against serde_json on awkward texts and on mutations of audit lines):
//! [`Structural::validate`] answers `Some(_)` exactly when the text is one JSON value (with
//! `Some(true)` for an object), except that it declines (`None`) texts with a byte below 0x20
//! anywhere (the hunt's one-pass parse declines those too and leaves them to sonic-rs), `\u`
//! escapes of surrogates and nesting deeper than 128.
//!
//! Measured (2026-12-07 18:25, callgrind over the first 20,000 lines of the benchmark's audit
//! log, reading included): 13,047 instructions per line against sonic-rs's 12,454 for its whole
//! document, the same wall clock; stage 1 alone (`structural-index`) 3,972. In safe Rust with
//! 16-byte vectors the validating walk is no cheaper than sonic-rs's parse.

use wide::u8x16;

const EVEN: u64 = 0x5555_5555_5555_5555;
const MAX_DEPTH: usize = 128;

/// Reused buffers of [`Structural::validate`].
#[derive(Default)]
pub struct Structural {
    /// Positions of `{}[]:,` outside strings and of both quotes of every string, in order.
    pos: Vec<u32>,
    /// Positions of backslashes inside strings, in order (few: escapes are rare).
    escapes: Vec<u32>,
}

impl Structural {
    /// `Some(is_object)` when `text` is one valid JSON value; `None` otherwise (or declined).
    pub fn validate(&mut self, text: &[u8]) -> Option<bool> {
        // (The hunt checks every line's UTF-8 too, as sonic-rs does while parsing.)
        std::str::from_utf8(text).ok()?;
        self.index(text)?;
        walk(text, &self.pos, &self.escapes)?;
        // Valid, so an object exactly when its first byte past the spaces opens one.
        Some(text.iter().find(|&&b| b != b' ') == Some(&b'{'))
    }

    /// Stage 1 into `pos` and `escapes`. `None` for a control byte or a text that ends inside
    /// a string.
    fn index(&mut self, text: &[u8]) -> Option<()> {
        self.pos.clear();
        self.escapes.clear();
        let mut stage = Stage1::default();
        stage.for_each_block(text, |base, m| {
            let mut bits = m.op_outside | m.quote;
            while bits != 0 {
                self.pos.push(base + bits.trailing_zeros());
                bits &= bits - 1;
            }
            // Backslashes outside strings are a grammar error the walk finds (no structural
            // there and no scalar takes them); inside, a string's first one starts its escapes'
            // check.
            let mut esc = m.backslash & m.strings;
            while esc != 0 {
                self.escapes.push(base + esc.trailing_zeros());
                esc &= esc - 1;
            }
        });
        (stage.ended_outside_strings() && !stage.control.any()).then_some(())
    }
}

/// simdjson's first stage, 64 bytes at a time: four 16-byte compares per character class,
/// escapes and string interiors resolved with word arithmetic. Carries what one block tells the
/// next.
#[derive(Default)]
pub struct Stage1 {
    /// All ones when the last block ended inside a string.
    inside: u64,
    /// 1 when the last block ended in an odd run of backslashes.
    odd_carry: u64,
    /// A lane set where some byte was below 0x20.
    control: u8x16,
}

/// One block's classes, a bit per byte.
pub struct Masks {
    /// `{}[]:,` outside strings.
    pub op_outside: u64,
    /// Quotes that open or close a string (escaped ones left out).
    pub quote: u64,
    /// Inside a string: its opening quote and interior, not its closing quote.
    pub strings: u64,
    /// Backslashes, inside strings or not.
    pub backslash: u64,
}

impl Stage1 {
    /// Calls `f` with each block's offset and masks (the last block padded with spaces).
    #[inline(always)]
    pub fn for_each_block(&mut self, text: &[u8], mut f: impl FnMut(u32, Masks)) {
        let mut blocks = text.chunks_exact(64);
        let mut base = 0u32;
        for block in &mut blocks {
            f(base, self.block(block));
            base += 64;
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut last = [b' '; 64];
            last[..rest.len()].copy_from_slice(rest);
            f(base, self.block(&last));
        }
    }

    /// Whether the text read so far does not end inside a string.
    pub fn ended_outside_strings(&self) -> bool {
        self.inside == 0
    }

    #[inline(always)]
    fn block(&mut self, block: &[u8]) -> Masks {
        let space = u8x16::splat(b' ');
        let (mut quote, mut backslash, mut op) = (0u64, 0u64, 0u64);
        for (i, part) in block.chunks_exact(16).enumerate() {
            let mut lanes = [0u8; 16];
            lanes.copy_from_slice(part);
            let v = u8x16::from(lanes);
            self.control |= v.simd_lt(space);
            let eq = |b: u8| v.simd_eq(u8x16::splat(b));
            let shift = 16 * i;
            quote |= u64::from(eq(b'"').to_bitmask()) << shift;
            backslash |= u64::from(eq(b'\\').to_bitmask()) << shift;
            let ops = eq(b'{') | eq(b'}') | eq(b'[') | eq(b']') | eq(b':') | eq(b',');
            op |= u64::from(ops.to_bitmask()) << shift;
        }
        // The characters after an odd run of backslashes are escaped (simdjson's
        // `find_odd_backslash_sequences`).
        let starts = backslash & !(backslash << 1);
        let even_start_mask = EVEN ^ self.odd_carry;
        let even_starts = starts & even_start_mask;
        let odd_starts = starts & !even_start_mask;
        let even_carries = backslash.wrapping_add(even_starts);
        let (mut odd_carries, overflow) = backslash.overflowing_add(odd_starts);
        odd_carries |= self.odd_carry;
        self.odd_carry = u64::from(overflow);
        let odd_ends = (even_carries & !backslash & !EVEN) | (odd_carries & !backslash & EVEN);
        let quote = quote & !odd_ends;
        // Inside a string: from an opening quote to its closing one (a prefix XOR).
        let mut strings = quote;
        for s in [1, 2, 4, 8, 16, 32] {
            strings ^= strings << s;
        }
        let strings = strings ^ self.inside;
        self.inside = if strings >> 63 == 1 { u64::MAX } else { 0 };
        Masks {
            op_outside: op & !strings,
            quote,
            strings,
            backslash,
        }
    }
}

/// What the walk expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A value (the start, after `:`, after `,` in an array).
    Value,
    /// A value or `]` (after `[`).
    ElementOrEnd,
    /// A key or `}` (after `{`).
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    /// `:` (after a key).
    Colon,
    /// `,` or the container's end (after a value).
    Next,
}

/// Stage 2: one pass over the structural positions, a state and a stack of open containers (one
/// bit each: set for an object), the text between two positions either spaces or one scalar.
/// `Some(())` when the text is one valid JSON value.
fn walk(text: &[u8], pos: &[u32], escapes: &[u32]) -> Option<()> {
    let mut want = Want::Value;
    let mut stack = [0u64; MAX_DEPTH / 64];
    let mut depth = 0usize;
    let mut last = 0usize; // end of the last token
    let mut e = 0usize; // next escape not yet checked
    let mut i = 0;
    while let Some(&p) = pos.get(i) {
        let p = p as usize;
        let c = *text.get(p)?;
        // What lies between the last token and this one.
        if p > last {
            let gap = text.get(last..p)?;
            if matches!(want, Want::Value | Want::ElementOrEnd) {
                let value = trim_spaces(gap);
                if !value.is_empty() {
                    if !scalar(value) {
                        return None;
                    }
                    want = Want::Next;
                }
            } else if !gap.iter().all(|&b| b == b' ') {
                return None;
            }
        }
        i += 1;
        match c {
            b'"' => {
                let close = *pos.get(i)? as usize;
                i += 1;
                if escapes.get(e).is_some_and(|&b| (b as usize) < close) {
                    let from = escapes[e] as usize;
                    while escapes.get(e).is_some_and(|&b| (b as usize) < close) {
                        e += 1;
                    }
                    self::escapes(text.get(from..close)?)?;
                }
                last = close + 1;
                want = match want {
                    Want::Value | Want::ElementOrEnd => Want::Next,
                    Want::KeyOrEnd | Want::Key => Want::Colon,
                    _ => return None,
                };
                continue;
            }
            b'{' | b'[' => {
                if !matches!(want, Want::Value | Want::ElementOrEnd) || depth >= MAX_DEPTH {
                    return None;
                }
                let word = &mut stack[depth / 64];
                let bit = 1u64 << (depth % 64);
                if c == b'{' {
                    *word |= bit;
                    want = Want::KeyOrEnd;
                } else {
                    *word &= !bit;
                    want = Want::ElementOrEnd;
                }
                depth += 1;
            }
            b'}' | b']' => {
                let object = c == b'}';
                let ok = match want {
                    Want::Next => true,
                    Want::KeyOrEnd => object,
                    Want::ElementOrEnd => !object,
                    _ => false,
                };
                if !ok || depth == 0 {
                    return None;
                }
                depth -= 1;
                if (stack[depth / 64] >> (depth % 64) & 1 == 1) != object {
                    return None;
                }
                want = Want::Next;
            }
            b':' => {
                if want != Want::Colon {
                    return None;
                }
                want = Want::Value;
            }
            // `,`
            _ => {
                if want != Want::Next || depth == 0 {
                    return None;
                }
                let object = stack[(depth - 1) / 64] >> ((depth - 1) % 64) & 1 == 1;
                want = if object { Want::Key } else { Want::Value };
            }
        }
        last = p + 1;
        if depth == 0 && want == Want::Next {
            // The top-level value ended: only spaces may follow.
            if i != pos.len() || !text.get(last..)?.iter().all(|&b| b == b' ') {
                return None;
            }
            return Some(());
        }
    }
    // No structural left: a top-level scalar, or a string that ended the text.
    let rest = text.get(last..)?;
    match want {
        Want::Next if depth == 0 => rest.iter().all(|&b| b == b' ').then_some(()),
        Want::Value if depth == 0 && pos.is_empty() => scalar(trim_spaces(rest)).then_some(()),
        _ => None,
    }
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// Checks the escapes of a string's interior (no control bytes: stage 1 declined those).
fn escapes(s: &[u8]) -> Option<()> {
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'\\', s.get(at..)?) {
        let e = at + i + 1;
        match *s.get(e)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at = e + 1,
            b'u' => {
                let hex = std::str::from_utf8(s.get(e + 1..e + 5)?).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                // Surrogates are declined (their pairing is not checked here).
                let unit = u16::from_str_radix(hex, 16).ok()?;
                if (0xD800..=0xDFFF).contains(&unit) {
                    return None;
                }
                at = e + 5;
            }
            _ => return None,
        }
    }
    Some(())
}

/// A JSON number or literal, exactly.
fn scalar(s: &[u8]) -> bool {
    match s {
        b"true" | b"false" | b"null" => true,
        _ => number(s),
    }
}

fn number(s: &[u8]) -> bool {
    let mut i = usize::from(s.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &[u8]) -> Option<bool> {
        serde_json::from_slice::<serde_json::Value>(text)
            .ok()
            .map(|v| v.is_object())
    }

    fn agrees(text: &[u8]) {
        if text.iter().any(|&b| b < 0x20) {
            return;
        }
        let ours = Structural::default().validate(text);
        assert_eq!(ours, serde(text), "{:?}", String::from_utf8_lossy(text));
    }

    #[test]
    fn agrees_with_serde_json_on_awkward_texts() {
        let texts: &[&str] = &[
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : 1 , "b" : [ true , false , null ] } "#,
            r#"{"a":"x\"y","b":"\\","c":"\u00e9\n"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 2}"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":-0.5e+10,"b":1E3,"c":-}"#,
            r#"{"a":1.}"#,
            r#"[1,[2,[3,{"x":[]}]]]"#,
            r#"[1 ,2]"#,
            r#"{"a":{"b":{}}}}"#,
            r#"{"a":"b"c}"#,
            r#""just a string""#,
            r#"12"#,
            r#"{"a":"unterminated}"#,
            r#"{"a\\":"b\\\\"}"#,
            r#"{,}"#,
            r#"[,1]"#,
            r#"{"a":[1,2,]}"#,
            r#"{"a":nul}"#,
            r#"{"a":null"b":1}"#,
            r#"{"é":"ü"}"#,
        ];
        for t in texts {
            agrees(t.as_bytes());
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(Structural::default().validate(deep.as_bytes()), None);
    }

    #[test]
    fn agrees_with_serde_json_on_mutated_audit_lines() {
        let line = br#"{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:controller\""},"apiVersion":"audit.k8s.io/v1","objectRef":{"apiGroup":"","namespace":"monitoring","resource":"nodes"},"responseStatus":{"code":200,"metadata":{}},"sourceIPs":["10.3.22.206"],"stage":"ResponseComplete","user":{"groups":["system:authenticated"],"uid":"0","username":"system:serviceaccount:monitoring:prometheus"},"verb":"list"}"#;
        agrees(line);
        let swaps = [
            b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b' ', b'1', b'x', b'-',
        ];
        for at in 0..line.len() {
            for &b in &swaps {
                let mut m = line.to_vec();
                m[at] = b;
                agrees(&m);
            }
            let mut cut = line.to_vec();
            cut.remove(at);
            agrees(&cut);
        }
    }
}
