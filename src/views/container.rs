//! Lesson 5's views: a root filesystem's contents, a chroot escape, mount tables, the
//! interfaces a network namespace has, the privileges a runtime leaves and the paths it
//! masks.

use super::table;
use crate::kernel::container::{
    EscapeReport, MaskedPath, MountEntry, PathSeen, Privileges, RootMode,
};
use crate::kernel::rootfs::{Origin, Summary};

/// `12.3 MiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// What a root filesystem holds: where it came from, `ls /`, counts and size.
pub fn rootfs_summary(s: &Summary) -> String {
    let origin = match &s.origin {
        Origin::Busybox { source, applets } => {
            format!(
                "a copy of {} (static) and {applets} links to it, one per tool",
                source.display()
            )
        }
        Origin::HostPrograms {
            programs,
            libraries,
        } => format!(
            "{} host programs ({}) and the {} shared libraries their ELF headers name",
            programs.len(),
            programs.join(" "),
            libraries.len()
        ),
        Origin::Given => "a directory you gave".to_string(),
    };
    let rows = vec![
        vec!["directory".to_string(), s.path.display().to_string()],
        vec!["made of".to_string(), origin],
        vec!["ls /".to_string(), s.top.join("  ")],
        vec![
            "entries".to_string(),
            format!(
                "{} files, {} directories, {} symbolic links",
                s.files, s.dirs, s.symlinks
            ),
        ],
        vec![
            "size".to_string(),
            format!("{} ({} bytes)", human(s.bytes), s.bytes),
        ],
    ];
    table::render(&["", ""], &rows)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A chroot (or pivot_root) escape attempt: `ls /` before and after.
pub fn escape(r: &EscapeReport) -> String {
    let how = match r.mode {
        RootMode::Chroot => "after chroot",
        RootMode::PivotRoot => "after pivot_root",
    };
    let verdict = if r.escaped {
        "ESCAPED: this is the host's /"
    } else {
        "still inside: the host's / is not reachable"
    };
    let rows = vec![
        vec![format!("ls / {how}"), r.inside.join("  ")],
        vec!["ls / after the escape".to_string(), r.after.join("  ")],
        vec!["result".to_string(), verdict.to_string()],
    ];
    table::render(&["", ""], &rows)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A mount table as `findmnt -l` shows it: mount point, type, source, propagation.
/// At most `limit` rows, then how many more there are.
pub fn mounts(m: &[MountEntry], limit: usize) -> String {
    let rows: Vec<Vec<String>> = m
        .iter()
        .take(limit)
        .map(|e| {
            let source = if e.root != std::path::Path::new("/") && !e.root.as_os_str().is_empty() {
                format!("{}[{}]", e.source, e.root.display())
            } else {
                e.source.clone()
            };
            let prop = if e.propagation.is_empty() {
                "private".to_string()
            } else {
                e.propagation.join(" ")
            };
            vec![
                e.mount_point.display().to_string(),
                e.fs_type.clone(),
                source,
                prop,
            ]
        })
        .collect();
    let mut out = table::render(&["TARGET", "FSTYPE", "SOURCE", "PROPAGATION"], &rows);
    if m.len() > limit {
        out.push_str(&format!("… and {} more\n", m.len() - limit));
    }
    out
}

/// Interfaces and routes of two network namespaces side by side.
pub fn networks(columns: &[(String, Vec<String>, usize)]) -> String {
    let rows: Vec<Vec<String>> = columns
        .iter()
        .map(|(who, ifs, routes)| vec![who.clone(), ifs.join(" "), routes.to_string()])
        .collect();
    table::render(&["", "INTERFACES", "IPv4 ROUTES"], &rows)
}

/// The five capability sets and no_new_privs of each column's process, as the lines of
/// /proc/PID/status hold them.
pub fn privileges(columns: &[(String, Privileges)]) -> String {
    let mut header = vec!["LINE", "SET"];
    header.extend(columns.iter().map(|(label, _)| label.as_str()));
    let row = |line: &str, set: &str, f: &dyn Fn(&Privileges) -> String| {
        let mut r = vec![line.to_string(), set.to_string()];
        r.extend(columns.iter().map(|(_, p)| f(p)));
        r
    };
    let hex = |m: u64| format!("{m:016x}");
    let rows = vec![
        row("CapInh", "inheritable", &|p| hex(p.inheritable)),
        row("CapPrm", "permitted", &|p| hex(p.permitted)),
        row("CapEff", "effective", &|p| hex(p.effective)),
        row("CapBnd", "bounding", &|p| hex(p.bounding)),
        row("CapAmb", "ambient", &|p| hex(p.ambient)),
        row("NoNewPrivs", "no_new_privs", &|p| {
            u8::from(p.no_new_privs).to_string()
        }),
    ];
    table::render(&header, &rows)
}

fn path_seen(s: &PathSeen) -> String {
    match s {
        PathSeen::Missing => "not there".into(),
        PathSeen::Dir { entries: 0 } => "an empty directory".into(),
        PathSeen::Dir { entries } => format!("a directory, {entries} entries"),
        PathSeen::File { bytes, more } => {
            format!(
                "a file: {}{bytes} bytes read",
                if *more { "over " } else { "" }
            )
        }
        PathSeen::CharDevice {
            major: 1,
            minor: 3,
            bytes,
        } => format!("/dev/null: {bytes} bytes read"),
        PathSeen::CharDevice {
            major,
            minor,
            bytes,
        } => format!("device {major}:{minor}: {bytes} bytes read"),
    }
}

/// runc's masked paths as the host and the container find them.
pub fn masked(paths: &[MaskedPath], inside_label: &str) -> String {
    let rows: Vec<Vec<String>> = paths
        .iter()
        .map(|m| vec![m.path.clone(), path_seen(&m.host), path_seen(&m.inside)])
        .collect();
    table::render(&["PATH", "ON THE HOST", inside_label], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
