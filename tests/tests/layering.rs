//! The shape of the shared crate: its modules import each other without a
//! cycle (host, settings, secrets at the bottom; tenant and workflow on top;
//! app over everything), the files of one directory module likewise, and
//! only `app.rs` knows the process state `App`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn shared_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

/// Every `.rs` file under `dir`, as its path relative to `shared/src`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("shared/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without its unit tests (which may import anything).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The lower-case module names that follow `prefix` in `text`.
fn modules_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(prefix).filter_map(move |(at, _)| {
        let rest = &text[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// The crate's module graph, and per directory module the graph of its files.
fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let root = shared_src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut top = Graph::new();
    let mut siblings: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under shared/src");
        let parts: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["lib"] {
            continue;
        }
        let module = parts[0].clone();
        // A directory's own file (mod.rs) declares its children; the
        // children's imports of each other are what may not go round.
        let child = (parts.len() == 2 && parts[1] != "mod").then(|| parts[1].clone());
        let text = code(&file);
        for used in modules_after(&text, "crate::") {
            if used != module {
                top.entry(module.clone())
                    .or_default()
                    .insert(used.to_string());
            }
        }
        if let Some(child) = child {
            let own = format!("crate::{module}::");
            let edges = siblings
                .entry(module.clone())
                .or_default()
                .entry(child.clone())
                .or_default();
            for used in modules_after(&text, "super::").chain(modules_after(&text, &own)) {
                if used != child && root.join(&module).join(format!("{used}.rs")).exists() {
                    edges.insert(used.to_string());
                }
            }
        }
        top.entry(module).or_default();
    }
    (top, siblings)
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_finder_finds_a_cycle() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .iter()
        .fold(Graph::new(), |mut g, (from, to)| {
            g.entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            g
        });
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&acyclic), None);
}

#[test]
fn the_modules_of_the_shared_crate_import_each_other_without_a_cycle() {
    let (top, siblings) = graphs();
    assert!(top.len() > 15, "every module was read: {top:?}");
    assert_eq!(cycle(&top), None, "{top:#?}");
    const BOTTOM: [&str; 4] = ["host", "clock", "telemetry", "secrets"];
    for bottom in BOTTOM {
        let deps: Vec<&String> = top[bottom]
            .iter()
            .filter(|d| !BOTTOM.contains(&d.as_str()))
            .collect();
        assert!(deps.is_empty(), "{bottom} sits at the bottom: {deps:?}");
    }
    for (module, files) in &siblings {
        assert_eq!(cycle(files), None, "{module}: {files:#?}");
    }
    assert!(
        siblings["config"]["envelope"].contains("block"),
        "file edges are read: {siblings:#?}"
    );
}

/// Does `line` name the type `App` (as a word, not inside `DropboxApp`)?
fn names_app(line: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    line.match_indices("App")
        .any(|(at, _)| !ident(line[..at].chars().last()) && !ident(line[at + 3..].chars().next()))
}

#[test]
fn only_app_rs_knows_the_process_state() {
    assert!(names_app("use crate::app::App;") && names_app("fn f(app: &App)"));
    assert!(!names_app("DropboxApp::new(http)") && !names_app("Apple"));
    let root = shared_src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mentions: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| !f.ends_with("app.rs"))
        .filter(|f| {
            code(f).lines().any(|line| {
                let line = line.trim_start();
                !line.starts_with("//") && (line.contains("crate::app") || names_app(line))
            })
        })
        .collect();
    assert!(mentions.is_empty(), "{mentions:?}");
}
