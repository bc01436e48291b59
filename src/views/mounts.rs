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
    use crate::kernel::mountinfo;
    use crate::kernel::overlay::Entry;

    fn e(path: &str, kind: EntryKind, preview: Option<&str>) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 3,
            ctime_ns: 0,
            preview: preview.map(str::to_string),
        }
    }

    #[test]
    fn mount_lines_with_their_propagation() {
        let m = mountinfo::parse(
            "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             300 27 0:60 / /var/tmp/nslab-mount-1 rw,relatime - tmpfs nslab rw\n\
             301 300 0:60 /prop /var/tmp/nslab-mount-1/prop rw,relatime shared:412 - tmpfs nslab rw\n\
             302 301 0:61 / /var/tmp/nslab-mount-1/prop/one rw master:412 - tmpfs nslab rw\n\
             303 300 0:60 /bind/src /var/tmp/nslab-mount-1/bind/dst ro,relatime - tmpfs nslab rw\n",
        );
        let base = Path::new("/var/tmp/nslab-mount-1");
        insta::assert_snapshot!(table(&m, Some(base)));
        assert_eq!(table(&[], None), "(no mount here)\n");
    }

    #[test]
    fn layers_before_and_after_a_copy_up_and_a_whiteout() {
        let upper = Layer {
            dir: "upper".into(),
            entries: vec![
                e("b.txt", EntryKind::File, Some("b from lower2")),
                e("c.txt", EntryKind::Whiteout, None),
            ],
            ..Layer::default()
        };
        let lower = Layer {
            dir: "lower2".into(),
            entries: vec![
                e("b.txt", EntryKind::File, Some("b from lower2")),
                e("c.txt", EntryKind::File, Some("c from lower2")),
                e("etc", EntryKind::Dir, None),
            ],
            ..Layer::default()
        };
        let gone = Layer {
            dir: "x".into(),
            unreadable: Some("No such file or directory (os error 2)".into()),
            ..Layer::default()
        };
        insta::assert_snapshot!(layers(
            &["lower2", "upper", "work", "x"],
            &[lower, upper, Layer::default(), gone]
        ));
    }
}
