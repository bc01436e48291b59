//! The mount lesson's views: lines of a mount table with their propagation, and what each
//! layer of an overlay holds.

use super::table;
use crate::kernel::mountinfo::Mount;
use crate::kernel::overlay::{EntryKind, Layer};
use std::path::Path;

/// `mount_point` shown relative to `base` (`BASE/prop/one`), so tables stay narrow.
fn short(path: &Path, base: Option<&Path>) -> String {
    match base.and_then(|b| path.strip_prefix(b).ok()) {
        Some(rel) if rel.as_os_str().is_empty() => "BASE".into(),
        Some(rel) => format!("BASE/{}", rel.display()),
        None => path.display().to_string(),
    }
}

/// Mount table lines (mountinfo's fields that matter here): ID, parent, root, mount point,
/// filesystem type, per-mount options and propagation. Paths under `base` are shortened.
pub fn table(mounts: &[Mount], base: Option<&Path>) -> String {
    if mounts.is_empty() {
        return "(no mount here)\n".into();
    }
    let rows: Vec<Vec<String>> = mounts
        .iter()
        .map(|m| {
            vec![
                m.mount_id.to_string(),
                m.parent_id.to_string(),
                m.root.display().to_string(),
                short(&m.mount_point, base),
                m.fs_type.clone(),
                m.options.split(',').next().unwrap_or("").to_string(),
                m.propagation_text(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "PARENT",
            "ROOT",
            "MOUNT POINT",
            "TYPE",
            "OPT",
            "PROPAGATION",
        ],
        &rows,
    )
}

/// Every name of each layer: its kind and first line. `labels` name the layers
/// (`lower1`, `upper`, `merged`).
pub fn layers(labels: &[&str], layers: &[Layer]) -> String {
    let mut rows = Vec::new();
    for (label, l) in labels.iter().zip(layers) {
        if let Some(why) = &l.unreadable {
            rows.push(vec![
                label.to_string(),
                "-".into(),
                why.clone(),
                String::new(),
            ]);
            continue;
        }
        if l.entries.is_empty() {
            rows.push(vec![
                label.to_string(),
                "(empty)".into(),
                String::new(),
                String::new(),
            ]);
        }
        for e in &l.entries {
            let content = match e.kind {
                EntryKind::File => e
                    .preview
                    .as_ref()
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            rows.push(vec![
                label.to_string(),
                e.path.display().to_string(),
                e.kind.name().to_string(),
                content,
            ]);
        }
    }
    // KIND as wide as its widest value always, so that a before/after diff of two such
    // tables changes only the rows that changed.
    let kind = format!(
        "{:<width$}",
        "KIND",
        width = EntryKind::Whiteout.name().len()
    );
    table::render(&["LAYER", "NAME", &kind, "CONTENT"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_mount_says_so() {
        assert_eq!(table(&[], None), "(no mount here)\n");
    }
}
