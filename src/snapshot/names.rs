//! A map from counter names to values, kept as one vector sorted by name:
//! a port's counters arrive sorted from their source (sysfs lists files
//! sorted, the netlink and MAD merges sort theirs), so building it is one
//! allocation and a check, where a `BTreeMap` sorted the list again and
//! allocated a node per eleven entries, every cycle, for every port.
//! Lookups are a binary search; it serialises as the same JSON object.

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
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            // Stable sort: of equal names the last given is last; keep it.
            entries.reverse();
            entries.dedup_by(|later, kept| later.0 == kept.0);
            entries.reverse();
        }
        NameMap { entries }
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.entries
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
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
