//! Line prefilter: which NDJSON lines can hold an event a query matches, found without parsing.
//!
//! A [`Requirement`] (from `ruleatlas_ir::literals`) names literals every matching event's
//! values contain. A [`LineFilter`] turns it into searches over raw bytes: blocks are searched
//! with one Aho-Corasick pass (its SIMD prefilter) for the rarest clause and whatever forces a
//! parse; each line hit is then checked whole (memchr's `memmem`, Aho-Corasick, or a `(?i)` regex
//! for folded literals). The lines kept are parsed as usual; the others are counted and skipped.
//!
//! Contract: a line the filter rejects parses to no event that a query with that requirement
//! matches. What the JSON text can do to a value's characters is handled here:
//! - `\uXXXX` escapes can write any character: a line with an escape of a character some
//!   literal needs (in any case for folded literals) is always a candidate;
//! - `\/` is the only other escape a usable literal can meet (literals holding `"`, `\` or
//!   control characters are not searched): lines with one are candidates when a literal has `/`;
//! - case folding is Unicode lowercase of both sides: besides ASCII, `İ` (U+0130) lowers to
//!   `i̇` and `K` (KELVIN SIGN) to `k`, so lines with them are candidates for folded literals
//!   with `i` or `k` (a test checks no other character lowers to ASCII); folded literals with
//!   other non-ASCII characters are not searched;
//! - GKE audit entries are rebuilt into audit Events with values of their own (`kind`,
//!   `apiVersion`, `stage`…): lines with `protoPayload` are always candidates. AKS and EKS
//!   wrappers carry the Event's JSON as it was (a string or an object), so its values stay in
//!   the line.
//!
//! A clause whose literals cannot all be searched is dropped (the filter keeps fewer lines out,
//! never more); with no clause left there is no filter.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use memchr::memmem::Finder;
use ruleatlas_ir::{Literal, Requirement};
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Candidate-line search over NDJSON bytes. Build with [`LineFilter::new`].
pub struct LineFilter {
    clauses: Vec<Clause>,
    /// The clause searched over whole blocks (the others are checked on its lines); chosen per
    /// file by [`LineFilter::choose_primary`].
    primary: AtomicUsize,
    /// Lines that must be parsed whatever their literals (rebuilt wrappers, `\/`, characters
    /// that fold to ASCII); `\u` escapes are checked apart (see `hides`).
    must_parse: Vec<Finder<'static>>,
    /// Per clause: its literals, then every must-parse text and `\u`, in one automaton — one
    /// pass over a block finds every line worth a closer look (three `memmem` passes cost
    /// twice as much).
    scanners: Vec<Scanner>,
    /// `\uXXXX` escapes of these characters hide a literal's character.
    hidden: BTreeSet<u32>,
    escape: Finder<'static>,
}

struct Clause {
    literals: Vec<Literal>,
    search: Search,
}

enum Search {
    One(Finder<'static>),
    Many(AhoCorasick),
    /// Folded literals: a `(?i-u:…)` regex, run on candidate lines only.
    Folded(regex::bytes::Regex),
}

impl Search {
    fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        match self {
            Search::One(f) => f.find(&hay[from..]).map(|i| i + from),
            Search::Many(ac) => ac
                .find(Input::new(hay).span(from..hay.len()))
                .map(|m| m.start()),
            Search::Folded(re) => re.find_at(hay, from).map(|m| m.start()),
        }
    }
}

/// One regex for `literals`, folded ones in `(?i-u:…)`.
fn folded_regex(literals: &[Literal]) -> Option<regex::bytes::Regex> {
    let alternatives: Vec<String> = literals
        .iter()
        .map(|l| {
            let escaped = regex::escape(&l.text);
            if l.case_insensitive {
                format!("(?i-u:{escaped})")
            } else {
                escaped
            }
        })
        .collect();
    regex::bytes::RegexBuilder::new(&alternatives.join("|"))
        .unicode(false)
        .build()
        .ok()
}

/// The block search of one clause: its literals, the must-parse texts and `\u` in one pass
/// (Aho-Corasick, whose SIMD prefilter does the work). Its hits are lines worth a look, checked
/// whole by [`LineFilter::keeps`]. A folded literal is searched as the case variants of its
/// first few bytes (at most 16 variants for the clause): Aho-Corasick's own ASCII case folding,
/// and a `(?i)` regex, fall back to walking an automaton byte by byte, 5× slower on 1 GB.
struct Scanner(AhoCorasick);

/// Case variants of folded literals kept to this many per clause.
const MAX_VARIANTS: usize = 16;

impl Scanner {
    fn new(literals: &[Literal], must_parse: &[&str]) -> Option<Scanner> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let folded: Vec<&Literal> = literals.iter().filter(|l| l.case_insensitive).collect();
        // The longest prefix whose variants stay within the cap (folded literals are ASCII).
        let mut k = folded.iter().map(|l| l.text.len()).max().unwrap_or(0);
        while k > 1
            && folded
                .iter()
                .map(|l| variants_count(&l.text, k))
                .sum::<usize>()
                > MAX_VARIANTS
        {
            k -= 1;
        }
        for l in literals {
            if l.case_insensitive {
                patterns.extend(case_variants(&l.text, k));
            } else {
                patterns.push(l.text.as_bytes().to_vec());
            }
        }
        patterns.extend(must_parse.iter().map(|t| t.as_bytes().to_vec()));
        patterns.push(b"\\u".to_vec());
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
            .ok()
            .map(Scanner)
    }

    /// Start of the first hit at or after `from`.
    fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        self.0
            .find(Input::new(hay).span(from..hay.len()))
            .map(|m| m.start())
    }
}

/// How many case variants the first `k` bytes of `text` have.
fn variants_count(text: &str, k: usize) -> usize {
    text.bytes()
        .take(k)
        .filter(|b| b.is_ascii_alphabetic())
        .fold(1usize, |n, _| n.saturating_mul(2))
}

/// The case variants of the first `k` bytes of an ASCII `text`.
fn case_variants(text: &str, k: usize) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for b in text.bytes().take(k) {
        let (lo, up) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
        out = out
            .into_iter()
            .flat_map(|v| {
                let mut a = v.clone();
                a.push(lo);
                let mut both = vec![a];
                if up != lo {
                    let mut u = v;
                    u.push(up);
                    both.push(u);
                }
                both
            })
            .collect();
    }
    out
}

/// Why a literal cannot be searched in JSON text.
fn searchable(l: &Literal) -> bool {
    !l.text.is_empty()
        && !l
            .text
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        && (!l.case_insensitive || l.text.is_ascii())
}

impl LineFilter {
    /// The filter for `req`; `None` when no clause can be searched.
    pub fn new(req: &Requirement) -> Option<LineFilter> {
        let mut clauses = Vec::new();
        for lits in &req.clauses {
            if !lits.iter().all(searchable) {
                continue;
            }
            let search = if lits.is_empty() {
                // Nothing can match: a search that finds nothing.
                Search::Many(AhoCorasick::new(Vec::<&str>::new()).ok()?)
            } else if lits.len() == 1 && !lits[0].case_insensitive {
                Search::One(Finder::new(lits[0].text.as_bytes()).into_owned())
            } else if lits.iter().any(|l| l.case_insensitive) {
                Search::Folded(folded_regex(lits)?)
            } else {
                let ac = AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(lits.iter().map(|l| l.text.as_str()))
                    .ok()?;
                Search::Many(ac)
            };
            clauses.push(Clause {
                literals: lits.clone(),
                search,
            });
        }
        if clauses.is_empty() {
            return None;
        }
        let mut hidden = BTreeSet::new();
        let mut must_parse_texts: Vec<&str> = vec!["protoPayload"];
        let mut slash = false;
        let mut specials: BTreeSet<&'static str> = BTreeSet::new();
        for l in clauses.iter().flat_map(|c| &c.literals) {
            for c in l.text.chars() {
                hidden.insert(c as u32);
                if l.case_insensitive {
                    hidden.insert(c.to_ascii_lowercase() as u32);
                    hidden.insert(c.to_ascii_uppercase() as u32);
                    for (special, lowers_to) in FOLDS_TO_ASCII {
                        if c.eq_ignore_ascii_case(lowers_to) {
                            hidden.insert(*special as u32);
                            specials.insert(special_text(*special));
                        }
                    }
                }
                slash |= c == '/';
            }
        }
        if slash {
            must_parse_texts.push("\\/");
        }
        must_parse_texts.extend(specials);
        let scanners = clauses
            .iter()
            .map(|c| Scanner::new(&c.literals, &must_parse_texts))
            .collect::<Option<Vec<_>>>()?;
        let must_parse = must_parse_texts
            .iter()
            .map(|t| Finder::new(t.as_bytes()).into_owned())
            .collect();
        Some(LineFilter {
            clauses,
            primary: AtomicUsize::new(0),
            must_parse,
            scanners,
            hidden,
            escape: Finder::new("\\u").into_owned(),
        })
    }

    /// Picks the clause whose block search hits least in `sample` to search blocks with.
    pub fn choose_primary(&self, sample: &[u8]) {
        const CAP: usize = 1 << 16;
        let hits = |s: &Scanner| {
            let mut n = 0;
            let mut from = 0;
            while n < CAP {
                match s.find(sample, from) {
                    Some(i) => {
                        n += 1;
                        from = i + 1;
                    }
                    None => break,
                }
            }
            n
        };
        // The clause whose block search stops least often.
        if let Some((i, _)) = self
            .scanners
            .iter()
            .enumerate()
            .min_by_key(|(_, sc)| hits(sc))
        {
            self.primary.store(i, Ordering::Relaxed);
        }
    }

    /// The literals of every clause, for messages: `"NodePort"; one of "a", "b"`.
    pub fn describe(&self) -> String {
        self.clauses
            .iter()
            .map(|c| {
                let lits: Vec<String> = c
                    .literals
                    .iter()
                    .map(|l| {
                        if l.case_insensitive {
                            format!("{:?} (any case)", l.text)
                        } else {
                            format!("{:?}", l.text)
                        }
                    })
                    .collect();
                match lits.len() {
                    0 => "nothing (the query matches no event)".to_string(),
                    1 => lits[0].clone(),
                    _ => format!("one of {}", lits.join(", ")),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Appends to `out` the candidate lines of `block` (whole lines, `\n`-separated), as byte
    /// ranges without their newline, in order.
    pub fn candidates(&self, block: &[u8], out: &mut Vec<Range<usize>>) {
        // One pass for the primary clause's literals and everything that forces a parse; each
        // line with a hit is then looked at whole.
        let first = self
            .primary
            .load(Ordering::Relaxed)
            .min(self.clauses.len() - 1);
        let scanner = &self.scanners[first];
        let mut from = 0;
        while from < block.len() {
            let Some(hit) = scanner.find(block, from) else {
                break;
            };
            let line = line_around(block, hit);
            from = line.end + 1;
            if self.keeps(&block[line.clone()]) {
                out.push(line);
            }
        }
    }

    /// Whether a line can hold a matching event: every clause finds a literal in it, or it has
    /// something that forces a parse.
    pub fn keeps(&self, line: &[u8]) -> bool {
        self.clauses
            .iter()
            .all(|c| c.search.find(line, 0).is_some())
            || self.must_parse.iter().any(|f| f.find(line).is_some())
            || self.escape.find_iter(line).any(|i| self.hides(line, i))
    }

    /// Whether the `\u` at `at` may write a character some literal needs (an escape that is not
    /// four hex digits is kept too: the parser will say what is wrong with it).
    fn hides(&self, block: &[u8], at: usize) -> bool {
        let Some(hex) = block.get(at + 2..at + 6) else {
            return true;
        };
        let Some(code) = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
        else {
            return true;
        };
        // A surrogate: part of a character beyond the BMP.
        (0xD800..0xE000).contains(&code) && self.hidden.iter().any(|&c| c > 0xFFFF)
            || self.hidden.contains(&code)
    }
}

/// Non-ASCII characters whose Unicode lowercase holds an ASCII letter, with that letter.
const FOLDS_TO_ASCII: &[(char, char)] = &[('\u{130}', 'i'), ('\u{212A}', 'k')];

fn special_text(c: char) -> &'static str {
    match c {
        '\u{130}' => "\u{130}",
        _ => "\u{212A}",
    }
}

/// The line (without its `\n`) holding byte `at`.
fn line_around(block: &[u8], at: usize) -> Range<usize> {
    let start = memchr::memrchr(b'\n', &block[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(clauses: &[&[(&str, bool)]]) -> LineFilter {
        let req = Requirement {
            clauses: clauses
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|(t, ci)| Literal {
                            text: t.to_string(),
                            case_insensitive: *ci,
                        })
                        .collect()
                })
                .collect(),
        };
        LineFilter::new(&req).expect("filter")
    }

    fn lines(f: &LineFilter, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        f.candidates(text.as_bytes(), &mut out);
        out.into_iter().map(|r| text[r].to_string()).collect()
    }

    #[test]
    fn keeps_lines_with_a_literal_of_every_clause() {
        let f = filter(&[
            &[("NodePort", false)],
            &[("create", false), ("patch", false)],
        ]);
        let text =
            "{\"t\":\"NodePort\",\"v\":\"create\"}\n{\"t\":\"ClusterIP\",\"v\":\"create\"}\n\
                    {\"t\":\"NodePort\",\"v\":\"get\"}\n{\"v\":\"patch\",\"t\":\"NodePort\"}";
        assert_eq!(
            lines(&f, text),
            vec![
                "{\"t\":\"NodePort\",\"v\":\"create\"}",
                "{\"v\":\"patch\",\"t\":\"NodePort\"}"
            ]
        );
    }

    #[test]
    fn escapes_that_may_hide_a_literal_are_candidates() {
        let f = filter(&[&[("NodePort", false)]]);
        // `\u004e` is `N`; `\u0026` (`&`) cannot write any character of the literal.
        let text = "{\"t\":\"\\u004eodePort\"}\n{\"u\":\"a\\u0026b\"}\n{\"u\":\"\\u00\"}";
        assert_eq!(
            lines(&f, text),
            vec!["{\"t\":\"\\u004eodePort\"}", "{\"u\":\"\\u00\"}"]
        );
        // `\/` only matters to literals with a slash; GKE entries always are candidates.
        let f = filter(&[&[("apps/v1", false)]]);
        let text = "{\"a\":\"apps\\/v1\"}\n{\"b\":\"x\\/y\"}\n{\"protoPayload\":{}}\n{\"c\":1}";
        assert_eq!(
            lines(&f, text),
            vec![
                "{\"a\":\"apps\\/v1\"}",
                "{\"b\":\"x\\/y\"}",
                "{\"protoPayload\":{}}"
            ]
        );
    }

    #[test]
    fn folded_literals_match_any_case_and_the_characters_that_lower_to_ascii() {
        let f = filter(&[&[("kubectl", true)]]);
        let text = "{\"a\":\"KUBECTL\"}\n{\"a\":\"\u{212A}ubectl\"}\n{\"a\":\"kube\"}\n{\"a\":\"\\u004Bubectl\"}";
        assert_eq!(
            lines(&f, text),
            vec![
                "{\"a\":\"KUBECTL\"}",
                "{\"a\":\"\u{212A}ubectl\"}",
                "{\"a\":\"\\u004Bubectl\"}"
            ]
        );
    }

    #[test]
    fn only_two_non_ascii_characters_lower_to_ascii() {
        let found: Vec<(char, char)> = (0x80..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter_map(|c| c.to_lowercase().find(|l| l.is_ascii()).map(|l| (c, l)))
            .collect();
        assert_eq!(found, FOLDS_TO_ASCII.to_vec());
    }

    #[test]
    fn unsearchable_literals_drop_their_clause() {
        let req = Requirement {
            clauses: vec![vec![Literal {
                text: "caf\u{e9}".into(),
                case_insensitive: true,
            }]],
        };
        assert!(LineFilter::new(&req).is_none());
        let req = Requirement {
            clauses: vec![
                vec![Literal {
                    text: "a\"b".into(),
                    case_insensitive: false,
                }],
                vec![Literal {
                    text: "pods".into(),
                    case_insensitive: false,
                }],
            ],
        };
        let f = LineFilter::new(&req).expect("one clause left");
        assert_eq!(f.describe(), "\"pods\"");
    }

    #[test]
    fn the_rarest_clause_is_searched_first() {
        let f = filter(&[&[("common", false)], &[("rare", false)]]);
        let sample = "common\ncommon\ncommon rare\n";
        f.choose_primary(sample.as_bytes());
        assert_eq!(f.primary.load(Ordering::Relaxed), 1);
        assert_eq!(lines(&f, sample), vec!["common rare"]);
    }
}
