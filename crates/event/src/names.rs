//! A small map from names to trie nodes, for the tries that every key of every event is looked
//! up in ([`crate::Projection`], [`crate::FieldPlan`]).
//!
//! A trie level holds a few dozen names and most keys of a document are not among them (a dozen
//! top-level keys of an audit Event against two dozen names), so a miss must cost one probe, not
//! a scan: names sit in insertion order in a vector, found through an open-addressing table of
//! positions hashed on a few bytes.

/// Names (insertion order) with a value each.
#[derive(Debug, Clone)]
pub(crate) struct NameTable<T> {
    entries: Vec<(Box<str>, T)>,
    /// Positions in `entries` (`EMPTY`: free slot); a power of two, at least twice the entries.
    table: Box<[u32]>,
}

const EMPTY: u32 = u32::MAX;

impl<T> Default for NameTable<T> {
    fn default() -> Self {
        NameTable {
            entries: Vec::new(),
            table: Box::default(),
        }
    }
}

/// The node a dotted document key leads to from `node`: the key split at its dots, one trie
/// level per component (names in a trie hold no dots), `child` naming a node's child and `stop`
/// ending the walk at a node that keeps everything below it. `None` for a key without a dot (the
/// caller has looked it up whole) and for a component that names no child.
///
/// Each byte is looked at once: the components are found as the walk goes, and a key whose
/// first component is no child is given up at its first dot.
#[inline]
pub(crate) fn walk_dotted_key<'n, N>(
    node: &'n N,
    key: &str,
    child: impl Fn(&'n N, &str) -> Option<&'n N>,
    stop: impl Fn(&N) -> bool,
) -> Option<&'n N> {
    // A plain loop: trie keys are short, a SIMD search costs more to set up.
    let dot = |s: &str| s.bytes().position(|b| b == b'.');
    let first = dot(key)?;
    let mut n = node;
    let mut rest = key;
    let mut at = Some(first);
    loop {
        if stop(n) {
            return Some(n);
        }
        match at {
            Some(i) => {
                n = child(n, &rest[..i])?;
                rest = &rest[i + 1..];
                at = dot(rest);
            }
            None => return child(n, rest),
        }
    }
}

/// A cheap hash of a name (length and three bytes): names in a trie differ early or in length.
fn name_hash(k: &[u8]) -> usize {
    match k {
        [] => 0,
        [first, .., last] => {
            k.len().wrapping_mul(0x9E37)
                ^ (*first as usize).wrapping_mul(31)
                ^ (*last as usize).wrapping_mul(131)
                ^ (k[k.len() / 2] as usize).wrapping_mul(7)
        }
        [only] => k.len() ^ (*only as usize).wrapping_mul(31),
    }
}

/// `a == b` for the short names of a trie without a call to `memcmp` (overlapping loads: two
/// words cover 8–16 bytes, two half-words 4–7, three bytes 1–3).
#[inline(always)]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let half = |s: &[u8], at: usize| -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

impl<T> NameTable<T> {
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&T> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut i = name_hash(name.as_bytes()) & mask;
        loop {
            let at = self.table[i];
            if at == EMPTY {
                return None;
            }
            let (k, v) = &self.entries[at as usize];
            if same(k.as_bytes(), name.as_bytes()) {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of `name`, added with `T::default()` if missing (trie building only).
    pub(crate) fn get_or_insert(&mut self, name: &str) -> &mut T
    where
        T: Default,
    {
        let i = match self.entries.iter().position(|(k, _)| **k == *name) {
            Some(i) => i,
            None => {
                self.entries.push((name.into(), T::default()));
                self.reindex();
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.table = Box::default();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    fn reindex(&mut self) {
        let size = (self.entries.len() * 2).next_power_of_two().max(4);
        let mut table = vec![EMPTY; size];
        for (at, (k, _)) in self.entries.iter().enumerate() {
            let mut i = name_hash(k.as_bytes()) & (size - 1);
            while table[i] != EMPTY {
                i = (i + 1) & (size - 1);
            }
            // A trie level holds a few dozen names, never 2^32.
            table[i] = u32::try_from(at).unwrap_or(EMPTY);
        }
        self.table = table.into_boxed_slice();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_walk_as_their_split_components() {
        // A uniform node type for the walk: each level a table of the next, names as paths.
        #[derive(Default)]
        struct N {
            children: NameTable<N>,
            path: String,
        }
        let mut root = N::default();
        let names = [
            "a.b.c",
            "a.b.dd",
            "authorization.k8s.io/decision",
            "a.x",
            "b.c",
        ];
        for name in names {
            let mut n = &mut root;
            let mut path = String::new();
            for c in name.split('.') {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(c);
                n = n.children.get_or_insert(c);
                n.path = path.clone();
            }
        }
        let split_walk = |key: &str| -> Option<String> {
            let comps: Vec<&str> = key.split('.').collect();
            if comps.len() < 2 {
                return None;
            }
            let mut n = &root;
            for c in comps {
                n = n.children.get(c)?;
            }
            Some(n.path.clone())
        };
        for key in [
            "",
            ".",
            "a",
            "a.b",
            "a.b.c",
            "a.b.c.",
            "a.b.dd",
            "a..b",
            ".a",
            "a.",
            "a.b.c.d",
            "authorization.k8s.io/decision",
            "authorization.k8s.io/reason",
            "b.c",
            "b.cc",
            "x.b.c",
            "ü.東.x",
            "a.x",
        ] {
            let got = walk_dotted_key(&root, key, |n, c| n.children.get(c), |_| false)
                .map(|n| n.path.clone());
            assert_eq!(got, split_walk(key), "{key:?}");
        }
        // A stopping node ends the walk there, whatever the rest of the key.
        let stop_at_ab = |n: &N| n.path == "a.b";
        let got = walk_dotted_key(&root, "a.b.zz.y", |n, c| n.children.get(c), stop_at_ab);
        assert_eq!(got.map(|n| n.path.as_str()), Some("a.b"));
    }

    #[test]
    fn finds_every_name_and_nothing_else() {
        // Many names (the table grows and probes past collisions), names that share length,
        // first, middle and last bytes.
        let mut names: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        names.extend(["ab", "ba", "aab", "abb", "a", "b", "", "kxk", "kyk"].map(String::from));
        let mut t: NameTable<usize> = NameTable::default();
        for (i, n) in names.iter().enumerate() {
            *t.get_or_insert(n) = i;
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n), Some(&i), "{n:?}");
        }
        for missing in ["k300", "kzk", "abc", "aa", "bb", "k", "K1"] {
            assert!(t.get(missing).is_none(), "{missing:?}");
        }
        // Names of every length around the word-compare boundaries, differing in one byte.
        let long: Vec<String> = (0..40).map(|n| "x".repeat(n)).collect();
        for n in &long {
            t.get_or_insert(n);
        }
        for n in &long {
            assert!(t.get(n).is_some(), "{n:?}");
            for at in 0..n.len() {
                let mut other = n.clone().into_bytes();
                other[at] = b'y';
                let other = String::from_utf8(other).expect("ascii");
                assert!(t.get(&other).is_none(), "{other:?}");
            }
        }
        t.clear();
        assert!(t.is_empty() && t.get("a").is_none());
    }
}
