//! Tokens with byte spans. Words (keywords and field names alike) are one token kind; the parser
//! decides by position, since EQL keywords such as `event` or `sequence` are also field names.

use crate::Dialect;
use ruleatlas_ir::{Diagnostic, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Word(String),
    /// `` `field name` `` (escaped backticks doubled).
    Quoted(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// Whitespace or a comment precedes the token (`like~` and `1s` must be written together).
    pub spaced: bool,
}

const OPS: [&str; 24] = [
    "==", "!=", "<=", ">=", "<", ">", "=", ":", "~", "(", ")", "[", "]", ",", "|", ".", "!", "?",
    "+", "-", "*", "/", "%", "{",
];

/// Splits `text` into tokens; lexical errors are collected and the offending text skipped.
pub fn lex(text: &str, dialect: Dialect, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            spaced = true;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map(|n| i + n).unwrap_or(bytes.len());
            spaced = true;
            continue;
        }
        if text[i..].starts_with("/*") {
            match text[i + 2..].find("*/") {
                Some(n) => i = i + 2 + n + 2,
                None => {
                    diags.push(err(i, bytes.len(), "unterminated comment"));
                    i = bytes.len();
                }
            }
            spaced = true;
            continue;
        }
        let start = i;
        let tok;
        if c == b'"' || c == b'\'' || (c == b'?' && matches!(bytes.get(i + 1), Some(b'"' | b'\'')))
        {
            let raw = c == b'?';
            if raw {
                i += 1;
            }
            let (s, end) = lex_string(text, i, raw, dialect, diags);
            i = end;
            tok = Tok::Str(s);
        } else if c == b'`' {
            let mut s = String::new();
            let mut j = i + 1;
            let mut closed = false;
            while j < bytes.len() {
                if bytes[j] == b'`' {
                    if bytes.get(j + 1) == Some(&b'`') {
                        s.push('`');
                        j += 2;
                        continue;
                    }
                    closed = true;
                    j += 1;
                    break;
                }
                let ch = text[j..].chars().next().unwrap_or('\0');
                s.push(ch);
                j += ch.len_utf8().max(1);
            }
            if !closed {
                diags.push(err(i, j, "unterminated back-quoted field name"));
            }
            i = j;
            tok = Tok::Quoted(s);
        } else if c.is_ascii_digit()
            || (c == b'.'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !prev_is_value(&out, spaced))
        {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            let mut float = false;
            if j < bytes.len()
                && bytes[j] == b'.'
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                float = true;
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < bytes.len()
                && (bytes[j] == b'e' || bytes[j] == b'E')
                && (bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                    || (matches!(bytes.get(j + 1), Some(b'+' | b'-'))
                        && bytes.get(j + 2).is_some_and(u8::is_ascii_digit)))
            {
                float = true;
                j += 2;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let s = &text[i..j];
            tok = if float {
                match s.parse::<f64>() {
                    Ok(f) => Tok::Float(f),
                    Err(_) => {
                        diags.push(err(i, j, format!("invalid number {s:?}")));
                        Tok::Float(0.0)
                    }
                }
            } else {
                match s.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => match s.parse::<f64>() {
                        Ok(f) => Tok::Float(f),
                        Err(_) => {
                            diags.push(err(i, j, format!("invalid number {s:?}")));
                            Tok::Int(0)
                        }
                    },
                }
            };
            i = j;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c >= 0x80 {
            let mut j = i;
            while j < bytes.len() {
                let b = bytes[j];
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'@' || b >= 0x80 {
                    j += 1;
                } else {
                    break;
                }
            }
            tok = Tok::Word(text[i..j].to_string());
            i = j;
        } else if let Some(op) = OPS.iter().find(|op| text[i..].starts_with(**op)) {
            i += op.len();
            tok = Tok::Op(op);
        } else {
            let ch = text[i..].chars().next().unwrap_or('\0');
            let end = i + ch.len_utf8().max(1);
            diags.push(err(i, end, format!("unexpected character {ch:?}")));
            i = end;
            spaced = true;
            continue;
        }
        out.push(Token {
            tok,
            span: Span::new(start, i),
            spaced,
        });
        spaced = false;
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(text.len(), text.len()),
        spaced: true,
    });
    out
}

/// Does the previous token end a value (so a following `.5` is a member access, not a number)?
fn prev_is_value(out: &[Token], spaced: bool) -> bool {
    !spaced
        && matches!(
            out.last().map(|t| &t.tok),
            Some(Tok::Word(_) | Tok::Quoted(_) | Tok::Op("]") | Tok::Op(")"))
        )
}

fn err(start: usize, end: usize, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::error("eql-syntax", msg).with_span(Span::new(start, end))
}

/// Lexes a string starting at its opening quote; returns its value and the end offset.
fn lex_string(
    text: &str,
    start: usize,
    raw: bool,
    dialect: Dialect,
    diags: &mut Vec<Diagnostic>,
) -> (String, usize) {
    let bytes = text.as_bytes();
    let q = bytes[start];
    // Elasticsearch raw strings: """…""" with no escapes.
    if q == b'"' && text[start..].starts_with("\"\"\"") {
        let body = start + 3;
        return match text[body..].find("\"\"\"") {
            Some(n) => (text[body..body + n].to_string(), body + n + 3),
            None => {
                diags.push(err(start, text.len(), "unterminated \"\"\" string"));
                (text[body..].to_string(), text.len())
            }
        };
    }
    if q == b'\'' && dialect == Dialect::Elasticsearch {
        diags.push(err(
            start,
            start + 1,
            "single-quoted strings are not supported in the elasticsearch dialect; use double quotes",
        ));
    }
    let mut s = String::new();
    let mut j = start + 1;
    while j < bytes.len() {
        let b = bytes[j];
        if b == q {
            return (s, j + 1);
        }
        if b == b'\n' && dialect == Dialect::Elasticsearch {
            break;
        }
        if b == b'\\' && !raw {
            let Some(&n) = bytes.get(j + 1) else {
                break;
            };
            let simple = match n {
                b'"' => Some('"'),
                b'\'' => Some('\''),
                b'\\' => Some('\\'),
                b'n' => Some('\n'),
                b't' => Some('\t'),
                b'r' => Some('\r'),
                b'b' => Some('\u{8}'),
                b'f' => Some('\u{c}'),
                b'0' => Some('\0'),
                _ => None,
            };
            if let Some(ch) = simple {
                s.push(ch);
                j += 2;
                continue;
            }
            if n == b'u' && bytes.get(j + 2) == Some(&b'{') {
                if let Some(close) = text[j + 3..].find('}') {
                    let hex = &text[j + 3..j + 3 + close];
                    match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                        Some(ch) => s.push(ch),
                        None => diags.push(err(
                            j,
                            j + 4 + close,
                            format!("invalid unicode escape \\u{{{hex}}}"),
                        )),
                    }
                    j = j + 4 + close;
                    continue;
                }
            }
            // Unknown escapes keep the backslash (the endgame engine does; Elastic rules rely on
            // it for regexes such as "\d").
            s.push('\\');
            j += 1;
            continue;
        }
        if raw && b == b'\\' && bytes.get(j + 1) == Some(&q) {
            s.push('\\');
            s.push(q as char);
            j += 2;
            continue;
        }
        let ch = text[j..].chars().next().unwrap_or('\0');
        s.push(ch);
        j += ch.len_utf8().max(1);
    }
    diags.push(err(start, j.min(text.len()), "unterminated string"));
    (s, j.min(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut d = Vec::new();
        let t = lex(s, Dialect::Endgame, &mut d);
        assert!(d.is_empty(), "{d:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_operators_strings_numbers() {
        assert_eq!(
            toks(r#"a.b[0] >= 4.5 and x == "q\"\\" // c"#),
            vec![
                Tok::Word("a".into()),
                Tok::Op("."),
                Tok::Word("b".into()),
                Tok::Op("["),
                Tok::Int(0),
                Tok::Op("]"),
                Tok::Op(">="),
                Tok::Float(4.5),
                Tok::Word("and".into()),
                Tok::Word("x".into()),
                Tok::Op("=="),
                Tok::Str("q\"\\".into()),
                Tok::Eof
            ]
        );
        assert_eq!(toks("?'a\\s'")[0], Tok::Str("a\\s".into()));
        assert_eq!(toks("\"\"\"a\\b\"\"\"")[0], Tok::Str("a\\b".into()));
        assert_eq!(toks("x >= .5")[2], Tok::Float(0.5));
        assert_eq!(toks("`a.b/c`")[0], Tok::Quoted("a.b/c".into()));
    }

    #[test]
    fn unterminated_string_is_located() {
        let mut d = Vec::new();
        lex("a == \"abc", Dialect::Elasticsearch, &mut d);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, Some(Span::new(5, 9)));
    }
}
