//! Who a process is, inside its user namespace and outside: its IDs side by side, and a
//! capability set decoded to its names.

use super::table;
use crate::kernel::ids::{cap_names, StatusIds, CAP_NAMES};

/// One column of [`compare`]: a label and the IDs its reader saw.
pub struct Column<'a> {
    pub label: String,
    pub ids: &'a StatusIds,
}

fn list(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// The same process (or several) as each reader's /proc/PID/status shows it: real,
/// effective, saved and filesystem IDs, supplementary groups, effective capabilities.
pub fn compare(columns: &[Column]) -> String {
    let mut header = vec![""];
    header.extend(columns.iter().map(|c| c.label.as_str()));
    let row = |name: &str, f: &dyn Fn(&StatusIds) -> String| {
        let mut r = vec![name.to_string()];
        r.extend(columns.iter().map(|c| f(c.ids)));
        r
    };
    let rows = vec![
        row("Uid (r e s fs)", &|s| list(&s.uid)),
        row("Gid (r e s fs)", &|s| list(&s.gid)),
        row("Groups", &|s| list(&s.groups)),
        row("CapEff", &|s| format!("{:016x}", s.cap_eff)),
        row("capabilities", &|s| count(s.cap_eff)),
    ];
    table::render(&header, &rows)
}

fn count(mask: u64) -> String {
    match cap_names(mask).len() {
        0 => "none".into(),
        n if n >= CAP_NAMES.len() => format!("all {n}"),
        n => n.to_string(),
    }
}

/// `CapEff: 000001ffffffffff` decoded, as `capsh --decode` does: its names, wrapped.
pub fn capabilities(mask: u64) -> String {
    let names = cap_names(mask);
    let head = match names.len() {
        0 => format!("{mask:016x} = no capabilities"),
        1 => format!("{mask:016x} = 1 capability"),
        _ => format!("{mask:016x} = {} capabilities", count(mask)),
    };
    if names.is_empty() {
        return format!("{head}\n");
    }
    let width = crate::ui::view_width();
    format!(
        "{head}:\n{}",
        crate::ui::wrap(&names.join(" "), width, "  ", "  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_capability_set() {
        let text = crate::ui::with_width(60, || capabilities(0x1ff_ffff_ffff));
        assert!(text.starts_with("000001ffffffffff = all 41 capabilities:"));
        assert!(text.lines().all(|l| l.len() <= 60), "{text}");
        assert!(text.contains("cap_sys_admin"));
        assert_eq!(capabilities(0), "0000000000000000 = no capabilities\n");
        assert_eq!(
            crate::ui::with_width(80, || capabilities(1 << 21)),
            "0000000000200000 = 1 capability:\n  cap_sys_admin\n"
        );
    }
}
