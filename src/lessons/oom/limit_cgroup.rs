//! The lesson's cgroup: made with its limit and no swap (step b, or first thing when a
//! later step starts the lesson), its memory directory found, and removed (step f).

use super::{OomLesson, CGROUP_NAME, MEMORY_VIEW};
use crate::error::Problem;
use crate::kernel::cgroup::concepts::human_bytes;
use crate::kernel::cgroup::{self, CgVersion, Concept, Max, NslabCgroup, Reading};
use crate::lesson::instance::named;
use crate::lesson::Stage;
use crate::views;
use anyhow::{Context, Result};
use std::path::PathBuf;

impl OomLesson {
    /// Step b's cgroup, made now if the learner started later (`--step c`).
    pub(super) fn ensure_cgroup(&mut self, stage: &mut Stage) -> Result<()> {
        if self.cg.is_some() {
            return Ok(());
        }
        stage.say("Making the cgroup of step b first.");
        self.make_cgroup(stage)
    }

    fn make_cgroup(&mut self, stage: &mut Stage) -> Result<()> {
        let limit = self.limit;
        let layout = self.layout()?.clone();
        let own = cgroup::own_cgroup()?;
        let st = cgroup::availability_from(&layout, &own, &["memory"], |p| {
            std::fs::read_to_string(p.join("cgroup.subtree_control"))
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect()
        });
        let st = &st[0];
        if !st.usable {
            return Err(Problem::environment(
                st.problem
                    .clone()
                    .unwrap_or_else(|| "the memory controller cannot be used here".into()),
                st.fix.clone().unwrap_or_default(),
            ));
        }
        let parent = st.parent.clone().context("no place for nslab's cgroup")?;
        let version = st.version.unwrap_or(CgVersion::V1);
        let dir = parent.join(named(CGROUP_NAME));
        let limit_file = Concept::MemoryLimit.files(version)[0].file;
        let swap_line = format!(
            "echo 0 | sudo tee {}/{}",
            dir.display(),
            cgroup::no_swap_file(version)
        );
        let mut cmd = String::new();
        if version == CgVersion::V2 {
            cmd.push_str(&format!(
                "sudo mkdir {p}\necho +memory | sudo tee {p}/cgroup.subtree_control\nsudo mkdir {d}\n",
                p = parent.display(),
                d = dir.display()
            ));
        } else {
            cmd.push_str(&format!("sudo mkdir -p {}\n", dir.display()));
        }
        cmd.push_str(&format!(
            "echo {limit} | sudo tee {}/{limit_file}\n{swap_line}\ncat {}/{limit_file}",
            dir.display(),
            dir.display()
        ));
        stage.command(&cmd);

        let cg = NslabCgroup::create_for(&named(CGROUP_NAME), &["memory"])?;
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(limit)))?;
        cg.forbid_swap()?;
        stage.syscalls();
        let dirs = cg.dirs.clone();
        stage.view(
            &format!("The new cgroup {}", dir.display()),
            &views::cgroup::render_cgroup(&dirs, &cg.read_all(&MEMORY_VIEW)),
        );
        if version == CgVersion::V2 && cg.created_dirs().iter().any(|d| d == &parent) {
            stage.say(
                "On v2 the memory controller had to be handed down first: nslab made its `nslab` parent and wrote \
                 +memory into that parent's cgroup.subtree_control, after which `oom` got a memory.max file.",
            );
        }
        if let Ok(Reading::Limit(Max::Value(back))) = cg.read(Concept::MemoryLimit) {
            if back == limit {
                stage.say(&format!(
                    "nslab wrote {limit} ({}) and the kernel stored exactly that.",
                    human_bytes(limit)
                ));
            } else {
                stage.say(&format!(
                    "nslab wrote {limit} and reads back {back}: the kernel rounds byte limits down to whole 4096-byte pages."
                ));
            }
        }
        self.cg = Some(cg);
        Ok(())
    }

    pub(super) fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        if self.cg.is_some() {
            stage.say("The cgroup exists already.");
            return Ok(());
        }
        self.make_cgroup(stage)
    }

    pub(super) fn mem_dir(&self) -> Result<(PathBuf, CgVersion)> {
        let cg = self.cg.as_ref().context("no cgroup yet")?;
        let d = cg
            .dir_for("memory")
            .context("nslab's cgroup has no memory directory")?;
        Ok((d.path.clone(), d.version))
    }

    pub(super) fn step_f(&mut self, stage: &mut Stage) -> Result<()> {
        let Some(mut cg) = self.cg.take() else {
            stage.say("nslab made no cgroup in this run: nothing to remove.");
            return Ok(());
        };
        let dirs: Vec<PathBuf> = cg.created_dirs().iter().rev().cloned().collect();
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        stage.command(&format!(
            "cat {}/cgroup.procs     # empty\nsudo rmdir {}",
            dirs[0].display(),
            shown.join(" ")
        ));
        let procs = cg.pids()?;
        if !procs.is_empty() {
            stage.say(&format!(
                "Still inside: {procs:?}; nslab kills them first (it started them)."
            ));
        }
        cg.remove()?;
        stage.syscalls();
        let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
        if left.is_empty() {
            stage.say(&format!("Removed, files and all: {}.", shown.join(" and ")));
        } else {
            stage.say(&format!(
                "Left in place: {} (another nslab run's cgroup is inside it).",
                left.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }
}
