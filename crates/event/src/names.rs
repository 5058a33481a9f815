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
/// A key that `dotted` (the node's [`DottedKeys`]) knows is answered by one lookup; any other is
/// walked. Each byte is looked at once: the components are found as the walk goes, and a key
/// whose first component is no child is given up at its first dot.
#[inline]
pub(crate) fn walk_dotted_key<'n, N>(
    node: &'n N,
    key: &str,
    dotted: Option<&DottedKeys>,
    child: impl Fn(&'n N, &str) -> Option<&'n N>,
    stop: impl Fn(&N) -> bool,
    children: impl Fn(&'n N) -> &'n NameTable<N>,
) -> Option<&'n N> {
    let dot = |s: &str| find_dot(s.as_bytes());
    let first = dot(key)?;
    if let Some(n) = dotted.and_then(|d| d.follow(node, key, &children)) {
        return Some(n);
    }
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

/// The first `.` in `key`, eight bytes at a time (the classic zero-byte test on the word XOR
/// dots). Every document key that names no child is searched for a dot (most have none), and a
/// byte loop cost ~2.5 instructions per byte of every such key; a SIMD search costs more to set
/// up than these short keys take.
#[inline]
fn find_dot(key: &[u8]) -> Option<usize> {
    const DOTS: u64 = u64::from_le_bytes([b'.'; 8]);
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = key.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w) ^ DOTS;
        // A byte of `x` is zero where `key` has a dot; the lowest set bit of the test is exact
        // (a borrow only runs upward, past the first zero byte).
        let zero = x.wrapping_sub(LOW) & !x & HIGH;
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'.')
        .map(|i| at + i)
}

/// The dotted keys that lead from a trie node to one of its descendants through nodes that do
/// not stop a walk (`authorization.k8s.io/decision` for the path `authorization` → `k8s` →
/// `io/decision`), each with the positions of the names on the way: what
/// [`walk_dotted_key`] finds for such a key, found by one lookup instead of one per component
/// (audit Events carry their annotations under such keys). Names hold no dots, so the joined
/// names are distinct.
#[derive(Debug, Clone, Default)]
pub(crate) struct DottedKeys(NameTable<Box<[u32]>>);

/// Components a dotted key of a [`DottedKeys`] has at most (deeper keys are walked).
const DOTTED_DEPTH: usize = 6;
/// Dotted keys a node holds at most (a bound against a trie of thousands of fields).
const DOTTED_MAX: usize = 1024;

impl DottedKeys {
    /// The dotted keys below `node` (see [`DottedKeys`]).
    pub(crate) fn of<N>(
        node: &N,
        children: &impl Fn(&N) -> &NameTable<N>,
        stop: &impl Fn(&N) -> bool,
    ) -> DottedKeys {
        fn collect<N>(
            node: &N,
            name: &mut String,
            path: &mut Vec<u32>,
            children: &impl Fn(&N) -> &NameTable<N>,
            stop: &impl Fn(&N) -> bool,
            out: &mut Vec<(Box<str>, Box<[u32]>)>,
        ) {
            for (at, (child_name, child)) in (0u32..).zip(children(node).iter()) {
                if out.len() >= DOTTED_MAX {
                    return;
                }
                let len = name.len();
                if !path.is_empty() {
                    name.push('.');
                }
                name.push_str(child_name);
                path.push(at);
                if path.len() >= 2 {
                    out.push((name.as_str().into(), path.as_slice().into()));
                }
                if path.len() < DOTTED_DEPTH && !stop(child) {
                    collect(child, name, path, children, stop, out);
                }
                path.pop();
                name.truncate(len);
            }
        }
        let mut out = Vec::new();
        if !stop(node) {
            collect(
                node,
                &mut String::new(),
                &mut Vec::new(),
                children,
                stop,
                &mut out,
            );
        }
        DottedKeys(NameTable::from_entries(out))
    }

    /// The descendant of `node` (the node these keys were made for) that `key` names, if `key`
    /// is one of them.
    fn follow<'n, N>(
        &self,
        node: &'n N,
        key: &str,
        children: &impl Fn(&'n N) -> &'n NameTable<N>,
    ) -> Option<&'n N> {
        let path = self.0.get(key)?;
        let mut n = node;
        for &at in path.iter() {
            n = children(n).at(at)?;
        }
        Some(n)
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
    // Always inlined: called for every key of every event the parse and the field plan meet
    // (~50 per audit Event), and a call's own cost was ~30 of its ~75 instructions.
    #[inline(always)]
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

    /// A table of `entries` (distinct names), indexed once.
    pub(crate) fn from_entries(entries: Vec<(Box<str>, T)>) -> NameTable<T> {
        let mut t = NameTable {
            entries,
            table: Box::default(),
        };
        if !t.entries.is_empty() {
            t.reindex();
        }
        t
    }

    /// The value of the name at position `at` in insertion order.
    pub(crate) fn at(&self, at: u32) -> Option<&T> {
        self.entries.get(at as usize).map(|(_, v)| v)
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

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().map(|(_, v)| v)
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
    fn find_dot_agrees_with_a_byte_search() {
        // Every length around the word size, a dot (or two) at every place, bytes that differ
        // from a dot by one bit or a borrow (`-` is one below `.`, `/` one above, 0xae its high
        // bit set).
        for len in 0..40 {
            for fill in [b'a', b'-', b'/', 0xae] {
                for first in 0..=len {
                    for second in [first, first + 1, len] {
                        let mut key = vec![fill; len];
                        if let Some(b) = key.get_mut(first) {
                            *b = b'.';
                        }
                        if let Some(b) = key.get_mut(second) {
                            *b = b'.';
                        }
                        let want = key.iter().position(|&b| b == b'.');
                        assert_eq!(find_dot(&key), want, "{key:?}");
                    }
                }
            }
        }
    }

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
        fn children(n: &N) -> &NameTable<N> {
            &n.children
        }
        let dotted = DottedKeys::of(&root, &children, &|_: &N| false);
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
            for dotted in [None, Some(&dotted)] {
                let got = walk_dotted_key(
                    &root,
                    key,
                    dotted,
                    |n, c| n.children.get(c),
                    |_| false,
                    children,
                )
                .map(|n| n.path.clone());
                assert_eq!(
                    got,
                    split_walk(key),
                    "{key:?}, shortcut {}",
                    dotted.is_some()
                );
            }
        }
        // The shortcut knows the paths of two names and more, not the rest.
        for known in [
            "a.b",
            "a.b.c",
            "a.b.dd",
            "authorization.k8s.io/decision",
            "k8s.io",
        ] {
            let found = dotted
                .follow(&root, known, &children)
                .map(|n| n.path.clone());
            assert_eq!(found.is_some(), known != "k8s.io", "{known}");
            assert!(found.is_none() || found == split_walk(known), "{known}");
        }
        // A stopping node ends the walk there, whatever the rest of the key; the shortcut
        // stops there too.
        let stop_at_ab = |n: &N| n.path == "a.b";
        let stopping = DottedKeys::of(&root, &children, &stop_at_ab);
        assert!(stopping.0.get("a.b").is_some());
        assert!(stopping.0.get("a.b.c").is_none());
        for dotted in [None, Some(&stopping)] {
            for key in ["a.b.zz.y", "a.b.c"] {
                let got = walk_dotted_key(
                    &root,
                    key,
                    dotted,
                    |n, c| n.children.get(c),
                    stop_at_ab,
                    children,
                );
                assert_eq!(got.map(|n| n.path.as_str()), Some("a.b"), "{key}");
            }
        }
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
