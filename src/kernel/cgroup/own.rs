//! nslab's own cgroups: `…/nslab/<name>` in each hierarchy a lesson needs, made on the
//! ledger first and removed with everything inside when dropped.

use super::io::{mkdir_traced, read_list, write_file};
use super::layout::{delegating_ancestor, missing_controller, not_delegated, outside_mount};
use super::removal::{remove_inner, Removal};
use super::{own_cgroup, CgDir, CgVersion, Cgroup, Home, Layout, LESSON_CONTROLLERS};
use crate::error::Problem;
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A cgroup nslab made: `…/nslab/<name>` in each hierarchy it needs. Dropping it kills what
/// is left inside and removes the directories (and the `nslab` parents it made, if empty).
#[derive(Debug)]
pub struct NslabCgroup {
    pub cgroup: Cgroup,
    /// Directories nslab made, in creation order (parents before children).
    pub(super) created: Vec<PathBuf>,
    removed: bool,
}

impl std::ops::Deref for NslabCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.cgroup
    }
}

/// Names nslab gives its cgroups: plain, so they are easy to type in an exercise.
pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Problem::usage(
            format!("{name:?} is not a usable cgroup name"),
            "use letters, digits, '-', '_' or '.', e.g. oom",
        ));
    }
    Ok(())
}

/// Make `dir` if missing, on the ledger first. Returns whether nslab made it.
pub(super) fn make_dir_recorded(dir: &Path) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    let res = Resource::Cgroup {
        path: dir.to_path_buf(),
    };
    // Another cgroup of this run may have recorded it already: its record must stay.
    let already = ledger::current().contains(&res);
    ledger::record(res.clone())?;
    match mkdir_traced(dir) {
        Ok(()) => {
            crate::kernel::removal::identify(&res);
            Ok(true)
        }
        Err(e) => {
            // Not made by us: another run made it meanwhile, or mkdir failed.
            if !already {
                ledger::forget(&res);
            }
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(false)
            } else {
                Err(e).with_context(|| format!("mkdir {}", dir.display()))
            }
        }
    }
}

impl NslabCgroup {
    /// `nslab/<name>` with the memory, cpu (and cpuacct) and pids controllers.
    pub fn create(name: &str) -> Result<NslabCgroup> {
        Self::create_for(name, &LESSON_CONTROLLERS)
    }

    /// `nslab/<name>` with just `controllers` (v1: one directory per hierarchy holding
    /// them; cpuacct comes with cpu when mounted apart, so CPU usage is readable).
    pub fn create_for(name: &str, controllers: &[&str]) -> Result<NslabCgroup> {
        Self::create_with(name, controllers, true)
    }

    /// `nslab/<name>` with exactly the hierarchies holding `controllers`: no cpuacct made
    /// beside cpu, for a cgroup whose usage nobody reads (`nslab run`'s). On v1 every
    /// directory is a mkdir and an rmdir more per run.
    pub fn create_exact(name: &str, controllers: &[&str]) -> Result<NslabCgroup> {
        Self::create_with(name, controllers, false)
    }

    fn create_with(name: &str, controllers: &[&str], with_cpuacct: bool) -> Result<NslabCgroup> {
        check_name(name)?;
        let layout = Layout::read()?;
        let own = own_cgroup()?;
        let mut wanted: Vec<&str> = controllers.to_vec();
        if with_cpuacct
            && wanted.contains(&"cpu")
            && !wanted.contains(&"cpuacct")
            && matches!(layout.home("cpuacct"), Some(Home::V1(_)))
        {
            wanted.push("cpuacct");
        }
        let mut cg = NslabCgroup {
            cgroup: Cgroup { dirs: Vec::new() },
            created: Vec::new(),
            removed: false,
        };
        let mut v2_wanted: Vec<&str> = Vec::new();
        for c in &wanted {
            match layout.home(c) {
                None => return Err(missing_controller(&layout, c)),
                Some(Home::V2(_)) => v2_wanted.push(c),
                Some(Home::V1(h)) => {
                    if cg
                        .cgroup
                        .dirs
                        .iter()
                        .any(|d| d.version == CgVersion::V1 && d.controllers == h.controllers)
                    {
                        continue;
                    }
                    let base = layout.dir_of(&own, c).ok_or_else(|| outside_mount(c))?;
                    let dir = cg.make_under(&base, name)?;
                    cg.cgroup.dirs.push(CgDir {
                        version: CgVersion::V1,
                        controllers: h.controllers.clone(),
                        path: dir,
                    });
                }
            }
        }
        if !v2_wanted.is_empty() {
            let u = layout
                .unified
                .as_ref()
                .expect("a v2 home implies a unified mount");
            let base = layout
                .dir_of(&own, v2_wanted[0])
                .ok_or_else(|| outside_mount(v2_wanted[0]))?;
            let anc = delegating_ancestor(&base, &u.mount_point, &v2_wanted, |p| {
                read_list(&p.join("cgroup.subtree_control"))
            })
            .ok_or_else(|| not_delegated(&base, &v2_wanted))?;
            let parent = anc.join("nslab");
            if make_dir_recorded(&parent)? {
                cg.created.push(parent.clone());
            }
            // Enable the controllers for nslab's children: only in nslab's own parent.
            let enabled = read_list(&parent.join("cgroup.subtree_control"));
            for c in &v2_wanted {
                if !enabled.iter().any(|e| e == c) {
                    write_file(&parent.join("cgroup.subtree_control"), &format!("+{c}"))?;
                }
            }
            let dir = parent.join(name);
            cg.make_child(&dir)?;
            cg.cgroup.dirs.push(CgDir {
                version: CgVersion::V2,
                controllers: v2_wanted.iter().map(|s| s.to_string()).collect(),
                path: dir,
            });
        }
        Ok(cg)
    }

    /// `<base>/nslab/<name>` on v1.
    fn make_under(&mut self, base: &Path, name: &str) -> Result<PathBuf> {
        let parent = base.join("nslab");
        let dir = parent.join(name);
        // The parent may vanish between our mkdirs (another run removing it): retry.
        for _ in 0..3 {
            if make_dir_recorded(&parent)? && !self.created.contains(&parent) {
                self.created.push(parent.clone());
            }
            match self.make_child(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if !parent.is_dir() => {
                    let _ = e;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        bail!(
            "could not create {} (its parent kept disappearing)",
            dir.display()
        )
    }

    fn make_child(&mut self, dir: &Path) -> Result<()> {
        let res = Resource::Cgroup {
            path: dir.to_path_buf(),
        };
        ledger::record(res.clone())?;
        match mkdir_traced(dir) {
            Ok(()) => {
                crate::kernel::removal::identify(&res);
                self.created.push(dir.to_path_buf());
                Ok(())
            }
            Err(e) => {
                ledger::forget(&res);
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Err(Problem::environment(
                        format!("the cgroup {} already exists (another nslab run uses it, or a crashed run left it)", dir.display()),
                        "run `sudo nslab cleanup`, or wait for the other run to finish",
                    ))
                } else {
                    Err(e).with_context(|| format!("mkdir {}", dir.display()))
                }
            }
        }
    }

    /// A cgroup `name` inside this one, with the same controllers: on the ledger before its
    /// mkdir, removed with this one (children first). On v2 this cgroup first hands its
    /// controllers down (`cgroup.subtree_control`), so it must hold no process itself.
    pub fn create_child(&mut self, name: &str) -> Result<Cgroup> {
        check_name(name)?;
        let mut dirs = Vec::new();
        for d in self.cgroup.dirs.clone() {
            if d.version == CgVersion::V2 {
                let enabled = read_list(&d.path.join("cgroup.subtree_control"));
                for c in &d.controllers {
                    if !enabled.iter().any(|e| e == c) {
                        write_file(&d.path.join("cgroup.subtree_control"), &format!("+{c}"))?;
                    }
                }
            }
            let dir = d.path.join(name);
            self.make_child(&dir)?;
            dirs.push(CgDir { path: dir, ..d });
        }
        Ok(Cgroup { dirs })
    }

    /// The directories nslab made for it, parents first (a `nslab` parent only if this
    /// cgroup's creation made it).
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    /// Kill what is left, remove the directories children-first, strike them off the ledger.
    /// A `nslab` parent still holding another cgroup stays on the ledger, so that a later
    /// removal in this run (or `nslab cleanup`) takes it once it is empty.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let mut first_err = None;
        let mut parents: Vec<PathBuf> = Vec::new();
        // Struck off the ledger together at the end: one rewrite, not one per directory.
        // Should nslab die before, `nslab cleanup` finds those already gone, which is fine.
        let mut gone = Vec::new();
        for dir in self.created.iter().rev() {
            if let Some(p) = dir.parent() {
                if !parents.iter().any(|x| x == p) && !self.created.iter().any(|x| x == p) {
                    parents.push(p.to_path_buf());
                }
            }
            match remove_inner(dir) {
                Ok(Removal::Gone) => gone.push(Resource::Cgroup { path: dir.clone() }),
                Ok(Removal::LeftInPlace) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        ledger::forget_all(&gone);
        // Parents this run made for an earlier cgroup, left then because this one was inside.
        let mine = ledger::current();
        for p in parents {
            if mine.contains(&Resource::Cgroup { path: p.clone() }) {
                if let Err(e) = remove_dir_of_run(&p) {
                    first_err.get_or_insert(e);
                }
            } else if p.file_name().is_some_and(|n| n == "nslab") {
                // A `nslab` parent another run made and left to us (it still held our cgroup
                // when that run ended): the last one out removes it once it is empty.
                let _ = remove_inner(&p);
            }
        }
        self.removed = true;
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// Remove one directory this run made; forget it once gone (a busy parent stays recorded).
pub(super) fn remove_dir_of_run(dir: &Path) -> Result<()> {
    let res = Resource::Cgroup {
        path: dir.to_path_buf(),
    };
    if remove_inner(dir)? == Removal::Gone {
        ledger::forget(&res);
    }
    Ok(())
}

impl Drop for NslabCgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
