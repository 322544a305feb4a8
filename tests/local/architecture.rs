//! The import graph of the library follows the data flow, and stays that way: this test reads every
//! file under `src/` (the binary's `cli/` and `main.rs` excepted: they are the edge and may use
//! anything), collects the top-level modules each one names through `crate::…`, and checks that
//! every such import points to a lower layer below. A module that needs something from a higher
//! layer is a sign that a type belongs lower down; move the type, don't loosen the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The library's modules from the bottom up; a module may import only modules in earlier layers.
const LAYERS: &[&[&str]] = &[
    &["time", "phase", "tls"],
    &["config"],
    &["metrics", "script"],
    &["engine"],
    &["report"],
    &["api", "outputs"],
    &["guard", "control"],
    &["local", "mock", "worker", "master", "console"],
    // What the `init` and `import` commands write: test files, in the format `config` reads.
    &["scaffold", "import"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of tests/architecture.rs: add it where it belongs"))
}

/// The top-level modules named in `text` as `crate::name` or `crate::{a, b::c}`, comments skipped.
/// A file's unit tests (from its `#[cfg(test)]` on) may reach up to check a round trip through a
/// higher layer; they are not part of the library's import graph.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().take_while(|l| l.trim() != "#[cfg(test)]") {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').collect()
            } else {
                vec![rest]
            };
            for n in names {
                let name: String = n
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    out.insert(name);
                }
            }
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// module → modules it imports, over the whole library.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(top.as_str(), "cli" | "main" | "lib") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != top));
    }
    graph
}

#[test]
fn every_import_points_down_the_layers() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &graph {
        for to in tos {
            if layer_of(to) >= layer_of(from) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the data flow (or between siblings): {wrong:?}\nthe graph: {graph:#?}"
    );
}

#[test]
fn the_import_graph_has_no_cycle() {
    // Independent of the layer list: Kahn's algorithm over the graph as found.
    let graph = graph();
    let mut indegree: BTreeMap<&str, usize> = graph.keys().map(|k| (k.as_str(), 0)).collect();
    for tos in graph.values() {
        for to in tos {
            *indegree.entry(to.as_str()).or_default() += 1;
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut seen = 0;
    while let Some(m) = ready.pop() {
        seen += 1;
        for to in graph.get(m).into_iter().flatten() {
            let d = indegree.get_mut(to.as_str()).expect("counted");
            *d -= 1;
            if *d == 0 {
                ready.push(to.as_str());
            }
        }
    }
    let stuck: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d > 0)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(seen, indegree.len(), "modules on a cycle: {stuck:?}");
}

#[test]
fn the_scanner_sees_grouped_and_plain_imports() {
    let found = imports(
        "use crate::a::B;\nuse crate::{b, c::D};\n// crate::commented\nlet x = crate::e::f(); // crate::g\n#[cfg(test)]\nuse crate::h;",
    );
    let want: BTreeSet<String> = ["a", "b", "c", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, want);
}
