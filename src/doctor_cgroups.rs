//! The cgroup part of `nslab doctor`: the machine's cgroup version and, for each controller
//! the lessons use, whether nslab can make its cgroups with it here and the fix if not.

use crate::kernel::cgroup::{self, Layout};

pub fn add_findings(add: &mut dyn FnMut(bool, bool, String, &str)) {
    let layout = match Layout::read() {
        Ok(l) => l,
        Err(e) => {
            let fix = e
                .downcast_ref::<crate::error::Problem>()
                .and_then(|p| p.fix())
                .unwrap_or("mount cgroup2: sudo mount -t cgroup2 none /sys/fs/cgroup")
                .to_string();
            add(false, true, format!("cgroups: {e}"), &fix);
            return;
        }
    };
    add(
        true,
        false,
        format!("cgroups: {}", layout.version.describe()),
        "",
    );
    match cgroup::availability() {
        Ok(st) => {
            for s in st {
                let v = s
                    .version
                    .map(|v| format!(" (cgroup {})", v.label()))
                    .unwrap_or_default();
                let what = if s.usable {
                    let at = s
                        .parent
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    format!("{} controller{v}: nslab's cgroups go in {at}", s.controller)
                } else {
                    format!(
                        "{} controller{v}: {}",
                        s.controller,
                        s.problem.as_deref().unwrap_or("not usable")
                    )
                };
                // Memory is what lesson 3 needs; cpu and pids only lessons 4 and 5.
                add(s.usable, false, what, s.fix.as_deref().unwrap_or(""));
            }
        }
        Err(e) => add(
            false,
            false,
            format!("cgroups: cannot tell which controllers work: {e:#}"),
            "",
        ),
    }
}
