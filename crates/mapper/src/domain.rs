//! The abstract domain: for each operation-key field, the set of catalog names it may hold.
//!
//! A [`KeyBox`] constrains every key dimension to a set (or leaves it unconstrained); an
//! expression evaluates to a union of boxes. Sets are over the catalog's own names, so negation
//! is a complement within the catalog and wildcards expand against it.

use std::collections::{BTreeSet, HashMap};

/// A fixed-size bit set over a universe's indices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn empty(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    pub fn full(n: usize) -> Bits {
        let mut b = Bits::empty(n);
        for i in 0..n {
            b.insert(i);
        }
        b
    }
    pub fn insert(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub fn and(&self, o: &Bits) -> Bits {
        Bits(self.0.iter().zip(&o.0).map(|(a, b)| a & b).collect())
    }
    pub fn or(&self, o: &Bits) -> Bits {
        Bits(self.0.iter().zip(&o.0).map(|(a, b)| a | b).collect())
    }
    pub fn complement(&self, n: usize) -> Bits {
        let full = Bits::full(n);
        Bits(self.0.iter().zip(&full.0).map(|(a, f)| !a & f).collect())
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, w)| {
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| wi * 64 + b)
        })
    }
}

/// The names one key field can take in the catalog.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Canonical field name, for reasons (`verb`, `objectRef.resource`).
    pub field: String,
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    folded: HashMap<String, Vec<usize>>,
    /// Index of the "field absent" pseudo-name (subresource of a main-resource request).
    pub absent: Option<usize>,
}

pub const ABSENT: &str = "(none)";

impl Universe {
    /// `names` in display order (reasons list them in this order).
    pub fn new(field: &str, names: Vec<String>, with_absent: bool) -> Universe {
        let mut names = names;
        let absent = with_absent.then(|| {
            names.push(ABSENT.to_string());
            names.len() - 1
        });
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut folded: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            folded.entry(n.to_lowercase()).or_default().push(i);
        }
        Universe {
            field: field.to_string(),
            names,
            index,
            folded,
            absent,
        }
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    /// Indices equal to `value` (folded when `ci`); never the absent pseudo-name.
    pub fn lookup(&self, value: &str, ci: bool) -> Vec<usize> {
        if ci {
            self.folded
                .get(&value.to_lowercase())
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|i| Some(*i) != self.absent)
                .collect()
        } else {
            self.index
                .get(value)
                .filter(|i| Some(**i) != self.absent)
                .map(|i| vec![*i])
                .unwrap_or_default()
        }
    }
    /// Indices of present names satisfying `f`.
    pub fn select(&self, f: impl Fn(&str) -> bool) -> Bits {
        let mut b = Bits::empty(self.len());
        for (i, n) in self.names.iter().enumerate() {
            if Some(i) != self.absent && f(n) {
                b.insert(i);
            }
        }
        b
    }
    pub fn present(&self) -> Bits {
        self.select(|_| true)
    }
    /// A set rendered for a reason: `field = a`, `field ∈ {a, b}`, or `field ∉ {…}` when the
    /// complement is shorter.
    pub fn render(&self, set: &Bits) -> String {
        let n = set.count();
        let names = |b: &Bits| -> Vec<&str> { b.iter().map(|i| self.names[i].as_str()).collect() };
        if let Some(a) = self.absent {
            if n == 1 && set.contains(a) {
                return format!("no {}", self.field);
            }
        }
        let comp = set.complement(self.len());
        let list = |v: Vec<&str>| -> String {
            const MAX: usize = 12;
            if v.len() > MAX {
                format!("{}, … {} more", v[..MAX].join(", "), v.len() - MAX)
            } else {
                v.join(", ")
            }
        };
        if n == 1 {
            format!("{} = {}", self.field, names(set).join(""))
        } else if n > 8 && comp.count() < n && comp.count() <= 12 {
            if comp.count() == 1 {
                format!("{} ≠ {}", self.field, names(&comp).join(""))
            } else {
                format!("{} ∉ {{{}}}", self.field, list(names(&comp)))
            }
        } else {
            format!("{} ∈ {{{}}}", self.field, list(names(set)))
        }
    }
}

/// One conjunction of key constraints: `dims[i] = None` leaves key field `i` unconstrained.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyBox {
    pub dims: Vec<Option<Bits>>,
    /// Request/response-object fields the conjunction tests (native names).
    pub fields: BTreeSet<String>,
}

impl KeyBox {
    pub fn top(n: usize) -> KeyBox {
        KeyBox {
            dims: vec![None; n],
            fields: BTreeSet::new(),
        }
    }
    /// The intersection, or `None` when it is empty.
    pub fn meet(&self, o: &KeyBox) -> Option<KeyBox> {
        let mut dims = Vec::with_capacity(self.dims.len());
        for (a, b) in self.dims.iter().zip(&o.dims) {
            let d = match (a, b) {
                (None, None) => None,
                (Some(x), None) | (None, Some(x)) => Some(x.clone()),
                (Some(x), Some(y)) => Some(x.and(y)),
            };
            if d.as_ref().is_some_and(Bits::is_empty) {
                return None;
            }
            dims.push(d);
        }
        Some(KeyBox {
            dims,
            fields: self.fields.union(&o.fields).cloned().collect(),
        })
    }
    /// The smallest box holding both (an over-approximation of their union).
    pub fn join(&self, o: &KeyBox) -> KeyBox {
        let dims = self
            .dims
            .iter()
            .zip(&o.dims)
            .map(|(a, b)| match (a, b) {
                (Some(x), Some(y)) => Some(x.or(y)),
                _ => None,
            })
            .collect();
        KeyBox {
            dims,
            fields: self.fields.union(&o.fields).cloned().collect(),
        }
    }
}

/// Past this many boxes a union is replaced by its hull: still sound, less precise.
pub const MAX_BOXES: usize = 512;

pub fn union(mut a: Vec<KeyBox>, b: Vec<KeyBox>) -> Vec<KeyBox> {
    for x in b {
        if !a.contains(&x) {
            a.push(x);
        }
    }
    cap(a)
}

pub fn meet_all(a: &[KeyBox], b: &[KeyBox]) -> Vec<KeyBox> {
    let mut out: Vec<KeyBox> = Vec::new();
    for x in a {
        for y in b {
            if let Some(m) = x.meet(y) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
    }
    cap(out)
}

fn cap(v: Vec<KeyBox>) -> Vec<KeyBox> {
    if v.len() <= MAX_BOXES {
        return v;
    }
    let mut it = v.into_iter();
    let Some(first) = it.next() else {
        return Vec::new();
    };
    vec![it.fold(first, |acc, b| acc.join(&b))]
}

/// Glob match (`*` any run, `?` one character, `\` escapes), optionally case-folded.
pub fn glob(pattern: &str, text: &str, ci: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ci {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == Some(&t[ti]) => {
                pi += 2;
                ti += 1;
                continue;
            }
            Some(c) if *c != '\\' && *c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_elasticsearch_wildcards() {
        assert!(glob("create*", "createfoo", false));
        assert!(glob("*services", "apiservices", false));
        assert!(glob("po?s", "pods", false));
        assert!(!glob("pods", "Pods", false));
        assert!(glob("PODS", "pods", true));
        assert!(glob("a\\*b", "a*b", false));
        assert!(!glob("a\\*b", "axb", false));
        assert!(glob("*", "", false));
    }

    #[test]
    fn boxes_meet_and_render() {
        let u = Universe::new(
            "verb",
            ["get", "create", "update", "patch", "delete"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            false,
        );
        let mut a = Bits::empty(u.len());
        for v in ["create", "update", "patch"] {
            a.insert(u.index_of(v).unwrap_or(0));
        }
        assert_eq!(u.render(&a), "verb ∈ {create, update, patch}");
        let c = a.complement(u.len());
        assert_eq!(u.render(&c), "verb ∈ {get, delete}");
        let mut many = Bits::full(u.len());
        for i in 0..u.len() {
            many.insert(i);
        }
        assert_eq!(
            u.render(&many),
            "verb ∈ {get, create, update, patch, delete}"
        );
        let mut b = KeyBox::top(1);
        b.dims[0] = Some(a.clone());
        let mut d = KeyBox::top(1);
        d.dims[0] = Some(c);
        assert!(b.meet(&d).is_none());
        assert_eq!(b.meet(&KeyBox::top(1)), Some(b.clone()));
    }
}
