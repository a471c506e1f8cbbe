use std::collections::BTreeMap;
use std::sync::Arc;

use super::NameMap;

fn entries(names: &[&str]) -> Vec<(Arc<str>, u64)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (Arc::from(*n), i as u64))
        .collect()
}

fn btree(e: &[(Arc<str>, u64)]) -> BTreeMap<Arc<str>, u64> {
    e.iter().cloned().collect()
}

#[test]
fn lookup_finds_every_name_and_only_those() {
    let m = NameMap::from_entries(entries(&["a", "link_downed", "port_rcv_data", "z"]));
    assert_eq!(m.get("a"), Some(&0));
    assert_eq!(m.get("link_downed"), Some(&1));
    assert_eq!(m["port_rcv_data"], 2);
    assert_eq!(m.get("z"), Some(&3));
    for absent in ["", "b", "link_down", "link_downed_", "zz", "A"] {
        assert_eq!(m.get(absent), None, "{absent}");
        assert!(!m.contains_key(absent));
    }
    assert!(m.contains_key("z"));
    assert_eq!(m.len(), 4);
    assert!(!m.is_empty());
    assert!(NameMap::<u64>::default().is_empty());
    assert_eq!(NameMap::<u64>::default().get("a"), None);
}

#[test]
fn unsorted_or_repeated_names_iterate_as_a_btreemap_does() {
    // Upper case sorts before lower case, shorter before longer: byte order.
    let given = entries(&["rx", "Rx", "a", "rx_b", "rx", "B", "a"]);
    let ours = NameMap::from_entries(given.clone());
    let theirs = btree(&given);
    let pairs = |i: Vec<(&Arc<str>, &u64)>| -> Vec<(String, u64)> {
        i.into_iter().map(|(n, v)| (n.to_string(), *v)).collect()
    };
    assert_eq!(pairs(ours.iter().collect()), pairs(theirs.iter().collect()));
    // The last of a repeated name wins, as in a collected BTreeMap.
    assert_eq!(ours.get("rx"), Some(&4));
    assert_eq!(ours.get("a"), Some(&6));
    let keys: Vec<&str> = ours.keys().map(|k| &**k).collect();
    assert_eq!(keys, ["B", "Rx", "a", "rx", "rx_b"]);
    let values: Vec<u64> = ours.values().copied().collect();
    assert_eq!(values, theirs.values().copied().collect::<Vec<_>>());
    assert_eq!(ours.iter().len(), 5);
    assert_eq!(ours.iter().next_back().map(|(k, _)| &**k), Some("rx_b"));
    // Collecting gives the same map.
    assert_eq!(given.into_iter().collect::<NameMap<u64>>(), ours);
}

#[test]
fn sorted_entries_are_kept_as_given() {
    let given = entries(&["a", "b", "c"]);
    let m = NameMap::from_entries(given.clone());
    let got: Vec<(Arc<str>, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(got, given);
    // The same Arcs, not copies of the names.
    assert!(Arc::ptr_eq(m.keys().next().expect("a"), &given[0].0));
}

#[test]
fn insert_keeps_the_order_and_replaces() {
    let mut m = NameMap::from_entries(entries(&["b", "d"]));
    assert_eq!(m.insert("c".into(), 10), None);
    assert_eq!(m.insert("a".into(), 11), None);
    assert_eq!(m.insert("e".into(), 12), None);
    assert_eq!(m.insert("b".into(), 13), Some(0));
    let got: Vec<(&str, u64)> = m.iter().map(|(k, v)| (&**k, *v)).collect();
    assert_eq!(got, [("a", 11), ("b", 13), ("c", 10), ("d", 1), ("e", 12)]);
}

#[test]
fn serialises_as_the_btreemap_it_replaces() {
    for names in [
        &[][..],
        &["only"][..],
        &["port_xmit_data", "link_downed", "symbol_error", "Z\"q", "é"][..],
        &["b", "a", "b"][..],
    ] {
        let e = entries(names);
        let ours = NameMap::from_entries(e.clone());
        let theirs = btree(&e);
        assert_eq!(
            serde_json::to_string(&ours).expect("json"),
            serde_json::to_string(&theirs).expect("json")
        );
        assert_eq!(
            serde_json::to_string_pretty(&ours).expect("json"),
            serde_json::to_string_pretty(&theirs).expect("json")
        );
    }
}

/// What `Positions` finds is what looking each name up finds, whatever
/// changed between two cycles: nothing, a name replaced by another of the
/// same count, a counter moved from one map to the other, a map grown.
#[test]
fn positions_find_what_a_lookup_finds_across_changes() {
    use super::Positions;
    let wanted = ["b", "x", "d", "absent"];
    let lookups = |a: &NameMap<u64>, b: &NameMap<u64>| -> Vec<(Option<u64>, Option<u64>)> {
        wanted
            .iter()
            .map(|n| (a.get(n).copied(), b.get(n).copied()))
            .collect()
    };
    let mut at = Positions::default();
    let mut check = |a: &NameMap<u64>, b: &NameMap<u64>| {
        let found: Vec<(Option<u64>, Option<u64>)> = at
            .find(&wanted, a, b)
            .map(|(x, y)| (x.copied(), y.copied()))
            .collect();
        assert_eq!(found, lookups(a, b));
    };
    let a = NameMap::from_entries(entries(&["a", "b", "c"]));
    let b = NameMap::from_entries(entries(&["d", "x"]));
    check(&a, &b);
    // The same maps again, and new values under the same names (a cycle).
    check(&a, &b);
    let a2: NameMap<u64> = a.iter().map(|(n, v)| (n.clone(), v + 100)).collect();
    check(&a2, &b);
    // Another name in place of one (same lengths).
    let a3 = NameMap::from_entries(entries(&["a", "c", "x"]));
    check(&a3, &b);
    // "d" moved from the second map to the first, the same Arc.
    let d = b.keys().next().expect("d").clone();
    let mut moved = a.clone();
    moved.insert(d, 7);
    let rest: NameMap<u64> = b.iter().skip(1).map(|(n, v)| (n.clone(), *v)).collect();
    check(&moved, &rest);
    // Empty maps.
    check(&NameMap::default(), &NameMap::default());
}

/// After a refresh, an entry is taken by index only if it is the very name
/// found: a map other than the one refreshed with gives nothing.
#[test]
fn positions_by_index_answer_only_for_the_maps_they_found() {
    use super::Positions;
    let wanted = ["b", "x"];
    let a = NameMap::from_entries(entries(&["a", "b"]));
    let b = NameMap::from_entries(entries(&["x"]));
    let mut at = Positions::default();
    at.refresh(&wanted, &a, &b);
    assert_eq!(at.first(0, &a), Some(&1));
    assert_eq!(at.second(0, &b), None);
    assert_eq!(at.first(1, &a), None);
    assert_eq!(at.second(1, &b), Some(&0));
    assert_eq!(at.first(2, &a), None);
    // Equal names, other strings: not the maps found.
    let a_copy = NameMap::from_entries(entries(&["a", "b"]));
    let b_copy = NameMap::from_entries(entries(&["x"]));
    assert_eq!(at.first(0, &a_copy), None);
    assert_eq!(at.second(1, &b_copy), None);
    at.refresh(&wanted, &a_copy, &b_copy);
    assert_eq!(at.first(0, &a_copy), Some(&1));
    assert_eq!(at.second(1, &b_copy), Some(&0));
}

/// The eight-bytes-at-a-time order is `str`'s, on names that share
/// prefixes of every length, prefixes of each other, and non-ASCII bytes.
#[test]
fn names_order_as_str_does() {
    let names = [
        "",
        "a",
        "b",
        "port",
        "port_rcv",
        "port_rcv_",
        "port_rcv_data",
        "port_rcv_errors",
        "port_rcv_data_64",
        "port_xmit_data",
        "port_rcv_dat",
        "rx_prio0_discards",
        "rx_prio0_pause_duration",
        "rx_prio1_discards",
        "rx_prio10",
        "Z",
        "é",
        "éa",
        "e\u{7f}",
        "abcdefgh",
        "abcdefghi",
        "abcdefgg",
        "abcdefghabcdefgh",
        "abcdefghabcdefgi",
        "abcdefghabcdefg",
        "\0",
        "\0\0\0\0\0\0\0\0\0",
    ];
    for a in names {
        for b in names {
            assert_eq!(super::order(a, b), a.cmp(b), "{a:?} {b:?}");
        }
    }
}
