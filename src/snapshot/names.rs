//! A map from counter names to values, kept as one vector sorted by name:
//! a port's counters arrive sorted from their source (sysfs lists files
//! sorted, the netlink and MAD merges sort theirs), so building it is one
//! allocation and a check, where a `BTreeMap` sorted the list again and
//! allocated a node per eleven entries, every cycle, for every port.
//! Lookups are a binary search; it serialises as the same JSON object.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

/// Counter name → `V`, sorted by name (byte order, as `str` compares), each
/// name once.
#[derive(Debug, Clone, PartialEq)]
pub struct NameMap<V> {
    entries: Vec<(Arc<str>, V)>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            entries: Vec::new(),
        }
    }
}

impl<V> NameMap<V> {
    /// The entries as given when they are sorted by name without repeats
    /// (the sources' order: one pass to check it); otherwise sorted, and of
    /// a repeated name the last entry kept, as a `BTreeMap` collects them.
    pub fn from_entries(mut entries: Vec<(Arc<str>, V)>) -> NameMap<V> {
        if !entries
            .windows(2)
            .all(|w| order(&w[0].0, &w[1].0) == Ordering::Less)
        {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            // Stable sort: of equal names the last given is last; keep it.
            entries.reverse();
            entries.dedup_by(|later, kept| later.0 == kept.0);
            entries.reverse();
        }
        NameMap { entries }
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.index_of(name).map(|i| &self.entries[i].1)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.entries.binary_search_by(|(n, _)| order(n, name)).ok()
    }

    /// Puts `value` under `name`, in order; returns the value it replaced.
    pub fn insert(&mut self, name: Arc<str>, value: V) -> Option<V> {
        match self.entries.binary_search_by(|(n, _)| n.cmp(&name)) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (name, value) in name order.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.entries.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.entries.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

/// How `str` orders `a` and `b` (byte by byte, a prefix first), compared
/// eight bytes at a time: counter names are short and share prefixes
/// (`port_rcv_`, `rx_prio`), and a call to `memcmp` per pair cost more than
/// the comparing.
fn order(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while let (Some((x, rest_a)), Some((y, rest_b))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        // Big-endian: the integers order as the bytes do.
        match u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y)) {
            Ordering::Equal => (a, b) = (rest_a, rest_b),
            unequal => return unequal,
        }
    }
    // Under eight bytes left on one side: byte by byte, no call.
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Where a fixed list of names sits in a port's two counter maps: found by
/// name once, then confirmed each cycle by pointer. A source hands out the
/// same names (the same `Arc`s) cycle after cycle, so for a port whose
/// lists did not change no name is compared; any change (a rescan, a
/// counter gone or moved) finds them by name again. One `Positions` serves
/// one list of wanted names.
#[derive(Debug, Default)]
pub struct Positions {
    /// The names of both maps when last found, kept alive: a pointer
    /// compare cannot be fooled by a freed and reused address.
    names: Vec<Arc<str>>,
    /// How many of `names` are the first map's.
    split: usize,
    /// Per wanted name: its index in the first map, in the second.
    at: Vec<(Option<usize>, Option<usize>)>,
}

impl Positions {
    /// Each of `wanted`'s entries in `a` and in `b`, in `wanted`'s order.
    pub fn find<'s, 'm, V>(
        &'s mut self,
        wanted: &[&str],
        a: &'m NameMap<V>,
        b: &'m NameMap<V>,
    ) -> impl Iterator<Item = (Option<&'m V>, Option<&'m V>)> + use<'s, 'm, V> {
        self.refresh(wanted, a, b);
        self.at
            .iter()
            .map(move |(i, j)| (i.map(|i| &a.entries[i].1), j.map(|j| &b.entries[j].1)))
    }

    /// The `k`th wanted name's entry in the first map (`a` of the last
    /// [`Positions::refresh`]); `None` for another map.
    pub fn first<'m, V>(&self, k: usize, a: &'m NameMap<V>) -> Option<&'m V> {
        self.entry(self.at.get(k)?.0?, 0, a)
    }

    /// The `k`th wanted name's entry in the second map (`b` of the last refresh).
    pub fn second<'m, V>(&self, k: usize, b: &'m NameMap<V>) -> Option<&'m V> {
        self.entry(self.at.get(k)?.1?, self.split, b)
    }

    /// Entry `i` of `m`, if it is the name kept at `offset + i` (the very same string).
    fn entry<'m, V>(&self, i: usize, offset: usize, m: &'m NameMap<V>) -> Option<&'m V> {
        let (n, v) = m.entries.get(i)?;
        Arc::ptr_eq(n, self.names.get(offset + i)?).then_some(v)
    }

    /// Confirms where `wanted` sits in `a` and `b`, or finds it again by name.
    pub fn refresh<V>(&mut self, wanted: &[&str], a: &NameMap<V>, b: &NameMap<V>) {
        let same = self.at.len() == wanted.len()
            && self.split == a.len()
            && self.names.len() == a.len() + b.len()
            && a.keys()
                .chain(b.keys())
                .zip(&self.names)
                .all(|(x, y)| Arc::ptr_eq(x, y));
        if !same {
            self.names.clear();
            self.names.extend(a.keys().chain(b.keys()).cloned());
            self.split = a.len();
            self.at.clear();
            self.at
                .extend(wanted.iter().map(|n| (a.index_of(n), b.index_of(n))));
        }
    }
}

/// The entries of a [`NameMap`] in name order, as `BTreeMap::iter` gives them.
#[derive(Debug, Clone)]
pub struct Iter<'a, V>(std::slice::Iter<'a, (Arc<str>, V)>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Arc<str>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(n, v)| (n, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(n, v)| (n, v))
    }
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a Arc<str>, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V> FromIterator<(Arc<str>, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, V)>>(iter: I) -> Self {
        NameMap::from_entries(iter.into_iter().collect())
    }
}

impl<V> std::ops::Index<&str> for NameMap<V> {
    type Output = V;

    /// Panics when `name` is not there, as `BTreeMap`'s index does.
    fn index(&self, name: &str) -> &V {
        self.get(name)
            .expect("no entry of that name in the NameMap")
    }
}

impl<V: Serialize> Serialize for NameMap<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (n, v) in &self.entries {
            m.serialize_entry(&**n, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests;
