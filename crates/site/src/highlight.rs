//! A small syntax highlighter for rule bodies: query languages (EQL, KQL, Lucene, ES|QL, Falco
//! conditions) and YAML (Sigma). Output is escaped HTML with `<span class>` tokens; every byte of
//! the input reaches the output as text, so a hostile body cannot inject markup.

/// Appends `s` to `out` with HTML special characters escaped (safe in text and quoted attributes).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

fn span(out: &mut String, class: &str, text: &str) {
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push_str("\">");
    escape_into(out, text);
    out.push_str("</span>");
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "where",
    "sequence",
    "sample",
    "join",
    "by",
    "with",
    "maxspan",
    "until",
    "runs",
    "any",
    "true",
    "false",
    "null",
    "like",
    "regex",
    "of",
    "from",
    "stats",
    "keep",
    "limit",
    "eval",
    "sort",
    "head",
    "tail",
    "contains",
    "startswith",
    "endswith",
    "exists",
    "pmatch",
    "intersects",
    "icontains",
    "glob",
    "bcontains",
    "metadata",
    "rlike",
    "is",
    "desc",
    "asc",
    "rename",
    "drop",
    "dissect",
    "grok",
    "mv_expand",
    "enrich",
    "count",
    "unique",
    "filter",
    "AND",
    "OR",
    "NOT",
    "TO",
];

/// Highlights a query language text.
pub fn query(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c == b'"' || c == b'\'' {
            // Triple-quoted raw strings (EQL """…""").
            if c == b'"' && text[i..].starts_with("\"\"\"") {
                let end = text[i + 3..]
                    .find("\"\"\"")
                    .map_or(b.len(), |p| i + 3 + p + 3);
                span(&mut out, "s", &text[start..end]);
                i = end;
                continue;
            }
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            span(&mut out, "s", &text[start..i]);
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = text[i..].find('\n').map_or(b.len(), |p| i + p);
            span(&mut out, "c", &text[start..end]);
            i = end;
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            span(&mut out, "n", &text[start..i]);
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'?' || c == b'@' {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'.' | b'-' | b'*' | b'/'))
            {
                i += 1;
            }
            let word = &text[start..i];
            if KEYWORDS.contains(&word) || KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                span(&mut out, "k", word);
            } else if word.contains('.')
                || text[i..]
                    .trim_start()
                    .starts_with([':', '=', '!', '<', '>'])
            {
                span(&mut out, "f", word);
            } else {
                escape_into(&mut out, word);
            }
        } else {
            // Advance one whole UTF-8 character.
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            escape_into(&mut out, &text[i..i + len]);
            i += len;
        }
    }
    out
}

/// Highlights YAML (Sigma rules): comments, keys, list markers and quoted strings.
pub fn yaml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start();
        let indent = &body[..body.len() - trimmed.len()];
        escape_into(&mut out, indent);
        if trimmed.starts_with('#') {
            span(&mut out, "c", trimmed);
            out.push_str(nl);
            continue;
        }
        let mut rest = trimmed;
        while let Some(r) = rest.strip_prefix("- ") {
            span(&mut out, "p", "-");
            out.push(' ');
            rest = r;
        }
        // `key:` when the colon is followed by space/end and the key is not quoted text.
        let key_end = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(|k| k.len()))
            .filter(|&k| !rest[..k].starts_with(['"', '\'']) && !rest[..k].contains(' '));
        let value = if let Some(k) = key_end {
            span(&mut out, "k", &rest[..k]);
            escape_into(&mut out, ":");
            &rest[(k + 1).min(rest.len())..]
        } else {
            rest
        };
        let v = value.trim_start();
        escape_into(&mut out, &value[..value.len() - v.len()]);
        if v.starts_with(['"', '\'']) {
            span(&mut out, "s", v);
        } else if v.starts_with('#') {
            span(&mut out, "c", v);
        } else if !v.is_empty() && v.parse::<f64>().is_ok() {
            span(&mut out, "n", v);
        } else if matches!(v, "true" | "false" | "null" | "|" | ">" | "|-" | ">-") {
            span(&mut out, "k", v);
        } else {
            escape_into(&mut out, v);
        }
        out.push_str(nl);
    }
    out
}

/// Picks the highlighter for a rule language.
pub fn body(language: &str, text: &str) -> String {
    match language {
        "sigma" | "yaml" => yaml(text),
        _ => query(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens() {
        let h = query(r#"any where kubernetes.audit.verb == "create" and x : 5"#);
        assert!(h.contains(r#"<span class="k">any</span>"#), "{h}");
        assert!(
            h.contains(r#"<span class="f">kubernetes.audit.verb</span>"#),
            "{h}"
        );
        assert!(
            h.contains(r#"<span class="s">&quot;create&quot;</span>"#),
            "{h}"
        );
        assert!(h.contains(r#"<span class="n">5</span>"#), "{h}");
    }

    #[test]
    fn nothing_escapes_highlighting() {
        for src in [
            "a == \"</span><script>alert(1)</script>",
            "x: '<b>' # <i>\n- <script>",
            "é <x> \"unterminated",
        ] {
            for h in [query(src), yaml(src)] {
                assert!(!h.contains("<script"), "{h}");
                assert!(
                    !h.contains("<b>") && !h.contains("<i>") && !h.contains("<x>"),
                    "{h}"
                );
            }
        }
    }

    #[test]
    fn text_round_trips() {
        let src = "title: X\ndetection:\n  sel:\n    - verb: 'create' # c\n  condition: sel\n";
        let h = yaml(src);
        let stripped = strip_tags(&h);
        assert_eq!(stripped, escape(src));
        let q = "sequence by a [x where b : (\"a\", 'b')] // c\n";
        assert_eq!(strip_tags(&query(q)), escape(q));
    }

    fn strip_tags(h: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in h.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }
}
