//! The source's shape, read from the files themselves: no top-level module imports one that
//! imports it back, and no lesson imports another. Code of tests is left out (a fixture may
//! take a lesson's texts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its tests: files that are tests only, and a trailing
/// `#[cfg(test)] mod tests`.
fn code_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    Some(match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    })
}

/// `crate::NAME` paths, and the names inside `crate::{A, B}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = first.trim_end_matches(".rs").to_string();
        // Test-only files are declared `#[cfg(test)] mod NAME;` beside their parent.
        let declared_for_tests = f.parent().is_some_and(|dir| {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains(&format!("#[cfg(test)]\nmod {stem};")))
                })
        });
        if declared_for_tests {
            continue;
        }
        let Some(code) = code_of(&f) else { continue };
        let entry = deps.entry(top.clone()).or_default();
        for name in crate_paths(&code) {
            if name != top {
                entry.insert(name);
            }
        }
    }
    deps
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let deps = graph();
    assert!(
        deps.contains_key("kernel") && deps.contains_key("lessons"),
        "{deps:?}"
    );
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for d in deps.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let circles: Vec<String> = deps
        .keys()
        .filter(|m| reach(m).contains(*m))
        .map(|m| format!("{m} -> {:?}", deps[m]))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    // The kernel layer is the bottom: it knows nothing of lessons, checks or the screen.
    for above in [
        "lesson", "lessons", "checks", "engine", "views", "ui", "commands",
    ] {
        assert!(!reach("kernel").contains(above), "kernel reaches {above}");
    }
}

#[test]
fn no_lesson_imports_another() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lessons");
    let lessons: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(lessons.len() >= 9, "{lessons:?}");
    let mut found = Vec::new();
    for lesson in &lessons {
        let mut files = Vec::new();
        rust_files(&dir.join(lesson), &mut files);
        for f in files {
            let Some(code) = code_of(&f) else { continue };
            for other in lessons.iter().filter(|o| *o != lesson) {
                for path in [
                    format!("lessons::{other}"),
                    format!("super::super::{other}"),
                ] {
                    if code.contains(&path) {
                        found.push(format!("{} uses {path}", f.display()));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
