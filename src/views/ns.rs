//! Namespace tables: one row per namespace kind, one column per process, like
//! `ls -l /proc/PID/ns` for several processes side by side.

use super::table;
use crate::kernel::ns::{NsKind, NsSet};

/// A column: a label ("nslab (PID 812)") and the process's namespace links.
pub struct Column<'a> {
    pub label: String,
    pub set: &'a NsSet,
}

fn cell(set: &NsSet, kind: NsKind) -> String {
    match set.links.iter().find(|l| l.kind == kind) {
        Some(l) => match (l.inode, &l.unreadable) {
            (Some(i), _) => i.to_string(),
            (None, Some(why)) => format!("({why})"),
            (None, None) => "?".into(),
        },
        None => "-".into(),
    }
}

/// The table; a `*` marks an inode that differs from the first column's.
pub fn compare(columns: &[Column]) -> String {
    let mut header = vec!["NAMESPACE"];
    let labels: Vec<&str> = columns.iter().map(|c| c.label.as_str()).collect();
    header.extend(labels.iter());
    header.push("ISOLATES");
    let mut rows = Vec::new();
    for kind in NsKind::ALL {
        let present = columns
            .iter()
            .any(|c| c.set.links.iter().any(|l| l.kind == kind));
        if !present {
            continue;
        }
        let mut row = vec![kind.file().to_string()];
        let first = columns.first().and_then(|c| c.set.inode(kind));
        for (i, c) in columns.iter().enumerate() {
            let mut v = cell(c.set, kind);
            if i > 0 && c.set.inode(kind).is_some() && first.is_some() && c.set.inode(kind) != first
            {
                v.push_str(" *");
            }
            row.push(v);
        }
        row.push(kind.isolates().to_string());
        rows.push(row);
    }
    let mut out = table::render(&header, &rows);
    if columns.len() > 1 && rows.iter().any(|r| r.iter().any(|c| c.ends_with(" *"))) {
        out.push_str(&format!(
            "* differs from {}: a namespace of its own\n",
            columns[0].label
        ));
    }
    out
}

/// A single process's links as `ls -l /proc/PID/ns` shows them.
pub fn links(set: &NsSet) -> String {
    let mut out = String::new();
    for l in &set.links {
        match l.inode {
            Some(i) => out.push_str(&format!(
                "{} -> {}:[{}]\n",
                l.kind.file(),
                link_kind(l.kind),
                i
            )),
            None => out.push_str(&format!(
                "{} -> ({})\n",
                l.kind.file(),
                l.unreadable.as_deref().unwrap_or("unreadable")
            )),
        }
    }
    out
}

/// The kind name inside a link target: pid_for_children links read `pid:[…]`.
fn link_kind(kind: NsKind) -> &'static str {
    match kind {
        NsKind::PidForChildren => "pid",
        NsKind::TimeForChildren => "time",
        k => k.file(),
    }
}

/// A line of mountinfo as the kernel wrote it, broken at its spaces to fit a view.
pub fn mount_line(line: &str) -> String {
    crate::ui::wrap(line, crate::ui::view_width(), "", "  ")
}
