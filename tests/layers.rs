//! The layer check: data flows one way through `src/`, and this test fails
//! when a lower layer imports a higher one (a source importing a collector,
//! the model importing a source, ...) or when modules of one layer import
//! each other in a cycle. DEVELOPERS.md's map says the same in prose.
//!
//! It reads every `src/**/*.rs`, drops comments, strings and `#[cfg(test)]`
//! items (a test may build its fixture through a higher layer), and resolves
//! each `crate::…` path (`use crate::{a, b}` groups included) and each
//! `super::` that climbs to the crate root to the top-level module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may import its own layer's modules (without a
/// cycle) and every layer below it, never one above.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "kernel ABI, time, the process's own pages and memory",
        &["sys", "clock", "resident", "allocator"],
    ),
    ("model: the reading and the snapshot schema", &["model"]),
    ("sources: one kernel interface each", &["sources"]),
    (
        "knowledge and plumbing over the sources",
        &[
            "catalog",
            "config",
            "metrics",
            "detect",
            "mad_worker",
            "merge",
        ],
    ),
    ("derive: deltas, rates, flags", &["snapshot"]),
    ("interpret: findings, AI", &["analysis"]),
    ("render: metric families", &["collectors"]),
    ("exporters: Prometheus, JSON files", &["exporters"]),
    ("the loop and the binary", &["agent", "main"]),
    ("front ends that run the loop: the live view", &["top"]),
];

/// Not part of the layering: the crate root declares every module, and the
/// test helpers may reach anything.
const EXEMPT: &[&str] = &["lib", "testutil"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Tokens with their line numbers; comments, string and char literals and
/// lifetimes are dropped (a `"crate::x"` in a message is no import).
fn tokenize(src: &str) -> Vec<(usize, Tok)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let skip_to = |i: usize, end: usize, line: &mut usize| {
        *line += b[i..end].iter().filter(|&&c| c == b'\n').count();
        end
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                i = skip_to(i, j, &mut line);
            }
            b'r' | b'b' if raw_string_start(&b[i..]).is_some() => {
                let (hashes, open) = raw_string_start(&b[i..]).unwrap();
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let body = i + open;
                let end = b[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |n| body + n + close.len());
                i = skip_to(i, end, &mut line);
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                i = skip_to(i, (j + 1).min(b.len()), &mut line);
            }
            b'\'' => {
                // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    let end = b[i + 2..]
                        .iter()
                        .position(|&c| c == b'\'')
                        .map_or(b.len(), |n| i + 3 + n);
                    i = end;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        i += 2 + ch_len;
                    } else {
                        i += 1; // lifetime: its name follows as an identifier
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((line, Tok::Ident(src[start..i].to_string())));
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                out.push((line, Tok::PathSep));
                i += 2;
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                if c.is_ascii() {
                    out.push((line, Tok::Punct(c as char)));
                }
                i += 1;
            }
        }
    }
    out
}

/// `r"`, `r#"`, `br"`…: the number of `#` and the length of the opening.
fn raw_string_start(b: &[u8]) -> Option<(usize, usize)> {
    let p = if b.starts_with(b"br") {
        2
    } else if b.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = b[p..].iter().take_while(|&&c| c == b'#').count();
    (b.get(p + hashes) == Some(&b'"')).then_some((hashes, p + hashes + 1))
}

fn ident(t: Option<&(usize, Tok)>) -> Option<&str> {
    match t {
        Some((_, Tok::Ident(s))) => Some(s),
        _ => None,
    }
}

fn is_punct(t: Option<&(usize, Tok)>, c: char) -> bool {
    matches!(t, Some((_, Tok::Punct(p))) if *p == c)
}

/// Index just past the item starting at `i` (through its `;` or its
/// balanced `{…}` body, whichever ends it first).
fn skip_item(toks: &[(usize, Tok)], mut i: usize) -> usize {
    while i < toks.len() {
        if is_punct(toks.get(i), ';') {
            return i + 1;
        }
        if is_punct(toks.get(i), '{') {
            let mut depth = 0;
            while i < toks.len() {
                if is_punct(toks.get(i), '{') {
                    depth += 1;
                } else if is_punct(toks.get(i), '}') {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                i += 1;
            }
        }
        i += 1;
    }
    i
}

/// The top-level modules a `{a, b::c, self}` group names, from its `{`.
fn group_heads(toks: &[(usize, Tok)], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut expect_head) = (0, true);
    for (_, t) in &toks[open..] {
        match t {
            Tok::Punct('{') => {
                depth += 1;
                expect_head = depth == 1;
            }
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => expect_head = true,
            Tok::Ident(s) if expect_head && depth == 1 => {
                if s != "self" {
                    heads.push(s.clone());
                }
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

struct Import {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
    text: String,
}

/// The module path of a file under `src/` (`sources/sysfs/mod.rs` → `[sources, sysfs]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" || parts.is_empty() {
        parts.push(stem.to_string());
    }
    parts
}

/// The imports of one file, and the files it declares under `#[cfg(test)]`.
fn scan(file: &Path, rel: &Path, src: &str) -> (Vec<Import>, Vec<String>) {
    let toks = tokenize(src);
    let base = module_path(rel);
    let top = base[0].clone();
    let mut imports = Vec::new();
    let mut test_mods = Vec::new();
    // Inline `mod x {` blocks: (name, brace depth at which it closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let text = |from: usize, to: usize| -> String {
        toks[from..to.min(toks.len())]
            .iter()
            .map(|(_, t)| match t {
                Tok::Ident(s) => s.clone(),
                Tok::PathSep => "::".into(),
                Tok::Punct(c) => c.to_string(),
            })
            .collect()
    };
    while i < toks.len() {
        // #[cfg(test)] <item>: test code, skipped (its file too when `mod x;`).
        if is_punct(toks.get(i), '#')
            && is_punct(toks.get(i + 1), '[')
            && ident(toks.get(i + 2)) == Some("cfg")
            && is_punct(toks.get(i + 3), '(')
            && ident(toks.get(i + 4)) == Some("test")
            && is_punct(toks.get(i + 5), ')')
            && is_punct(toks.get(i + 6), ']')
        {
            let mut j = i + 7;
            while ident(toks.get(j)).is_some_and(|s| s == "pub") {
                j += 1;
            }
            if ident(toks.get(j)) == Some("mod")
                && let Some(name) = ident(toks.get(j + 1))
                && is_punct(toks.get(j + 2), ';')
            {
                test_mods.push(name.to_string());
            }
            i = skip_item(&toks, i + 7);
            continue;
        }
        match &toks[i].1 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let Some(name) = ident(toks.get(i + 1))
                    && is_punct(toks.get(i + 2), '{')
                {
                    inline.push((name.to_string(), depth));
                }
            }
            Tok::Ident(k) if k == "crate" || k == "super" => {
                let is_dollar = i > 0 && is_punct(toks.get(i - 1), '$');
                let after_sep = i > 0 && toks[i - 1].1 == Tok::PathSep;
                if !is_dollar && !after_sep && toks.get(i + 1).map(|t| &t.1) == Some(&Tok::PathSep)
                {
                    // Where the path lands: crate root, or `super` climbing.
                    let mut j = i;
                    let mut at_root = k == "crate";
                    if !at_root {
                        let mut here: Vec<String> = base.clone();
                        here.extend(inline.iter().map(|(n, _)| n.clone()));
                        while ident(toks.get(j)) == Some("super")
                            && toks.get(j + 1).map(|t| &t.1) == Some(&Tok::PathSep)
                        {
                            here.pop();
                            j += 2;
                        }
                        at_root = here.is_empty();
                        j -= 2;
                    }
                    if at_root {
                        let head = j + 2;
                        let targets = if is_punct(toks.get(head), '{') {
                            group_heads(&toks, head)
                        } else {
                            ident(toks.get(head))
                                .map(str::to_string)
                                .into_iter()
                                .collect()
                        };
                        let end = skip_path(&toks, head);
                        for to in targets {
                            imports.push(Import {
                                file: file.to_path_buf(),
                                line: toks[i].0,
                                from: top.clone(),
                                to,
                                text: text(i, end),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (imports, test_mods)
}

/// Index past a path starting at `i` (identifiers, `::`, one `{…}` group).
fn skip_path(toks: &[(usize, Tok)], mut i: usize) -> usize {
    loop {
        match toks.get(i).map(|t| &t.1) {
            Some(Tok::Ident(_)) | Some(Tok::PathSep) | Some(Tok::Punct('*')) => i += 1,
            Some(Tok::Punct('{')) => {
                let mut depth = 0;
                while let Some((_, t)) = toks.get(i) {
                    i += 1;
                    match t {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                return i;
                            }
                        }
                        _ => {}
                    }
                }
                return i;
            }
            _ => return i,
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every non-test import across top-level modules in `src/`.
fn imports(src_dir: &Path) -> Vec<Import> {
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    files.sort();
    let mut all = Vec::new();
    let mut test_files = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(src_dir).unwrap();
        let src = std::fs::read_to_string(file).unwrap();
        let (imports, test_mods) = scan(&Path::new("src").join(rel), rel, &src);
        // `mod tests;` in a/b.rs or a/b/mod.rs is the file a/b/tests.rs (or tests/mod.rs).
        let dir = if rel
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs")
        {
            rel.parent().unwrap().to_path_buf()
        } else {
            rel.with_extension("")
        };
        for m in test_mods {
            test_files.insert(dir.join(format!("{m}.rs")));
            test_files.insert(dir.join(&m));
        }
        all.push((rel.to_path_buf(), imports));
    }
    all.into_iter()
        .filter(|(rel, _)| !test_files.iter().any(|t| rel.starts_with(t)))
        .flat_map(|(_, i)| i)
        .filter(|i| i.from != i.to)
        .collect()
}

/// What is wrong with these imports: an import upward, a module in no layer,
/// or a cycle inside one layer.
fn violations(imports: &[Import]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut peers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for imp in imports {
        if EXEMPT.contains(&imp.from.as_str()) || imp.to == "testutil" {
            continue;
        }
        let where_ = format!("{}:{}: `{}`", imp.file.display(), imp.line, imp.text);
        let (Some(from), Some(to)) = (layer_of(&imp.from), layer_of(&imp.to)) else {
            let unknown = if layer_of(&imp.from).is_none() {
                &imp.from
            } else {
                &imp.to
            };
            problems.push(format!(
                "{where_}: module `{unknown}` is in no layer (add it to LAYERS)"
            ));
            continue;
        };
        if to > from {
            problems.push(format!(
                "{where_}: `{}` ({}) imports `{}` ({}), a higher layer",
                imp.from, LAYERS[from].0, imp.to, LAYERS[to].0
            ));
        } else if to == from {
            peers.entry(&imp.from).or_default().insert(&imp.to);
        }
    }
    // A cycle among the modules of one layer.
    for (&a, outs) in &peers {
        for &b in outs {
            if a < b && reaches(&peers, b, a) {
                problems.push(format!(
                    "`{a}` and `{b}` import each other (a cycle in one layer)"
                ));
            }
        }
    }
    problems
}

fn reaches(graph: &BTreeMap<&str, BTreeSet<&str>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from];
    while let Some(m) = stack.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m) {
            stack.extend(graph.get(m).into_iter().flatten());
        }
    }
    false
}

#[test]
fn no_layer_imports_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&imports(&src));
    let mut msg = String::new();
    for p in &problems {
        writeln!(msg, "  {p}").unwrap();
    }
    assert!(
        problems.is_empty(),
        "layer violations (see DEVELOPERS.md, Layout):\n{msg}"
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if (path.is_dir() || path.extension().is_some_and(|e| e == "rs"))
            && layer_of(&name).is_none()
            && !EXEMPT.contains(&name.as_str())
        {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "src/ modules in no layer of tests/layers.rs: {missing:?}"
    );
}

/// The scanner on the shapes of import it must see, and those it must not.
#[test]
fn the_scanner_finds_every_form_of_import() {
    let src = r##"
        use crate::{model::Reading, sources::{sysfs, netdev}};
        use crate::collectors::catalog;
        fn f() { let _ = crate::exporters::unix_ms(x); }
        // use crate::agent::Agent;
        const S: &str = "crate::agent";
        const R: &str = r#"crate::agent"#;
        fn g<'a>(c: char) -> bool { c == '{' && c != '\'' }
        mod inner { use super::super::super::analysis::findings; }
        #[cfg(test)]
        mod tests { use crate::agent::Agent; }
        #[cfg(test)]
        mod more_tests;
    "##;
    let (imports, test_mods) = scan(
        Path::new("src/sources/x.rs"),
        Path::new("sources/x.rs"),
        src,
    );
    let mut to: Vec<&str> = imports.iter().map(|i| i.to.as_str()).collect();
    to.sort();
    assert_eq!(
        to,
        ["analysis", "collectors", "exporters", "model", "sources"]
    );
    assert_eq!(test_mods, ["more_tests"]);
    let problems = violations(&imports);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("src/sources/x.rs:3: `crate::collectors::catalog`")),
        "{problems:#?}"
    );
    // `super` that stays inside the layer is no import across modules.
    let (inside, _) = scan(
        Path::new("a"),
        Path::new("sources/sysfs/mod.rs"),
        "use super::file;",
    );
    assert!(inside.is_empty());
}

#[test]
fn a_cycle_inside_one_layer_is_refused() {
    let imp = |from: &str, to: &str| Import {
        file: PathBuf::from("src/x.rs"),
        line: 1,
        from: from.into(),
        to: to.into(),
        text: String::new(),
    };
    let ok = violations(&[imp("merge", "mad_worker"), imp("mad_worker", "config")]);
    assert!(ok.is_empty(), "{ok:?}");
    let cycle = violations(&[imp("merge", "mad_worker"), imp("mad_worker", "merge")]);
    assert_eq!(cycle.len(), 1, "{cycle:?}");
}
