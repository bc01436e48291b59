//! Step a: where nslab's own process is in the memory hierarchy, v1 or v2 or hybrid, and
//! whether the learner's shell is elsewhere.

use super::OomLesson;
use crate::error::Problem;
use crate::kernel::cgroup::{self, Cgroup, Concept, Home};
use crate::kernel::procs;
use crate::lesson::Stage;
use crate::views;
use anyhow::Result;

impl OomLesson {
    pub(super) fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("cat /proc/self/cgroup\ngrep cgroup /proc/self/mountinfo");
        let me = std::process::id() as i32;
        let own = cgroup::own_cgroup()?;
        let layout = self.layout()?.clone();
        stage.view(
            &format!("/proc/{me}/cgroup (nslab itself)"),
            &views::cgroup::render_proc_cgroup(&own),
        );
        stage.view(
            "The cgroup hierarchies, from /proc/self/mountinfo",
            &views::cgroup::render_layout(&layout, &own, "nslab"),
        );
        let mine = Cgroup::of_pid(&layout, me, &["memory"])?;
        let Some(dir) = mine.dir_for("memory").map(|d| d.path.clone()) else {
            return Err(Problem::environment(
                "this machine has no memory cgroup controller",
                "boot a kernel with memory cgroups (cgroup_enable=memory), see `nslab doctor`",
            ));
        };
        let path = layout.path_in_hierarchy("memory", &dir).unwrap_or_default();
        match layout.home("memory") {
            Some(Home::V1(h)) => {
                let with = if h.controllers.len() > 1 {
                    format!("together with {}", h.controllers.iter().filter(|c| *c != "memory").cloned().collect::<Vec<_>>().join(", "))
                } else {
                    "on its own".to_string()
                };
                stage.say(&format!(
                    "Here memory is a cgroup v1 controller, mounted {with} at {}. In that hierarchy nslab is in the \
                     cgroup {path}, which is the directory {}.",
                    h.mount_point.display(),
                    dir.display()
                ));
            }
            Some(Home::V2(u)) => stage.say(&format!(
                "Here memory is a cgroup v2 controller: one tree at {}, and nslab is in its cgroup {path}, the \
                 directory {}.",
                u.mount_point.display(),
                dir.display()
            )),
            None => {}
        }
        if layout.version == cgroup::Version::Hybrid {
            let v2 = if layout.v2_controllers.is_empty() {
                "no controller at all".to_string()
            } else {
                layout.v2_controllers.join(", ")
            };
            stage.say(&format!(
                "This machine is hybrid: beside the v1 hierarchies, a v2 tree is mounted at {} with {v2}. \
                 Lessons use v1 for memory here; on a pure v2 machine the same concepts live in that one tree.",
                layout.unified.as_ref().map(|u| u.mount_point.display().to_string()).unwrap_or_default()
            ));
        }
        if let Some(shell) = procs::caller() {
            if let Ok(sh) = Cgroup::of_pid(&layout, shell.pid, &["memory"]) {
                if sh.dir_for("memory").map(|d| &d.path) != Some(&dir) {
                    stage.say(&format!(
                        "Your shell ({}, PID {}) is in another memory cgroup than nslab.",
                        shell.comm, shell.pid
                    ));
                }
            }
        }
        let values = mine.read_all(&[Concept::MemoryLimit, Concept::MemoryUsage]);
        stage.view(
            &format!("nslab's own memory cgroup ({})", dir.display()),
            &views::cgroup::render_values(&values),
        );
        Ok(())
    }
}
