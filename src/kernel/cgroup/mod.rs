//! cgroups, v1 (legacy and hybrid) and v2, behind one set of concepts.
//!
//! - [`mountinfo`]: where the hierarchies are mounted and where a process sits in them.
//! - [`concepts`]: the one table concept → (v1 file, v2 file), and the parsers.
//! - here: reading and writing real cgroup directories, and nslab's own cgroups
//!   ([`NslabCgroup`]), which live under `<caller's cgroup>/nslab/<name>` in each hierarchy
//!   (on v2: under the nearest ancestor that delegates the controllers).
//!
//! Every directory nslab makes is on the ledger before `mkdir`, and every write and
//! `mkdir`/`rmdir` is recorded in the trace as strace would show it.

pub mod concepts;
pub mod find;
pub mod kmsg;
pub mod mountinfo;

// The public API lessons and checks use (some are only used by later lessons).
#[allow(unused_imports)]
pub use concepts::{CgVersion, Concept, CpuQuota, CpuWeight, Max, Reading};
pub use mountinfo::{Home, Layout, ProcCgroup, Version};

use super::trace;
use crate::error::Problem;
use crate::ledger::{self, Resource};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The controllers nslab's lessons use.
pub const LESSON_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

impl Layout {
    /// The live layout: this process's mountinfo and the v2 root's controllers.
    pub fn read() -> Result<Layout> {
        let mi = read_small("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        let (_, unified) = mountinfo::parse_mountinfo(&mi);
        let ctrls = unified
            .as_ref()
            .and_then(|u| read_small(u.mount_point.join("cgroup.controllers")).ok())
            .unwrap_or_default();
        mountinfo::layout_from(&mi, &ctrls).ok_or_else(|| {
            Problem::environment(
                "no cgroup filesystem is mounted (neither cgroup v1 nor cgroup2 appears in /proc/self/mountinfo)",
                "mount cgroup2:  sudo mount -t cgroup2 none /sys/fs/cgroup",
            )
        })
    }
}

/// Is `/sys/fs/cgroup` itself a cgroup2 mount (pure v2, as systemd sets it up)? One statfs.
pub fn is_pure_v2() -> bool {
    version_of_dir(Path::new("/sys/fs/cgroup")) == CgVersion::V2
}

/// The cgroup version of the filesystem `dir` lies in: cgroup2 is v2, anything else
/// (the v1 `cgroup` filesystem) v1.
pub fn version_of_dir(dir: &Path) -> CgVersion {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    match statfs(dir) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => CgVersion::V2,
        _ => CgVersion::V1,
    }
}

/// The file [`Cgroup::forbid_swap`] writes `0` into: v2 `memory.swap.max`, v1
/// `memory.swappiness`.
pub fn no_swap_file(version: CgVersion) -> &'static str {
    match version {
        CgVersion::V1 => "memory.swappiness",
        CgVersion::V2 => "memory.swap.max",
    }
}

/// `/proc/PID/cgroup` of a process.
pub fn proc_cgroup(pid: i32) -> Result<Vec<ProcCgroup>> {
    let p = format!("/proc/{pid}/cgroup");
    let text = read_small(&p).with_context(|| format!("reading {p}"))?;
    Ok(mountinfo::parse_proc_cgroup(&text))
}

/// A file of /proc or cgroupfs, which report a size of 0: read into a buffer large
/// enough for it at once (`read_to_string` would start with 32-byte reads).
fn read_small(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// `/proc/self/cgroup`.
pub fn own_cgroup() -> Result<Vec<ProcCgroup>> {
    proc_cgroup(std::process::id() as i32)
}

/// The absolute directory of `pid`'s cgroup for `controller` (None if not mounted).
pub fn dir_of_pid(layout: &Layout, pid: i32, controller: &str) -> Result<Option<PathBuf>> {
    Ok(layout.dir_of(&proc_cgroup(pid)?, controller))
}

/// One directory of a cgroup: v1 has one per hierarchy, v2 exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgDir {
    pub version: CgVersion,
    /// Controllers reachable through this directory (v1: the hierarchy's; v2: those enabled).
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// One concept's value as read from a cgroup, with the real file it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConceptValue {
    pub concept: Concept,
    pub label: &'static str,
    pub version: CgVersion,
    /// "memory.max (v2)", for views.
    pub file: String,
    pub path: PathBuf,
    /// The reading, or why it could not be read.
    pub reading: std::result::Result<Reading, String>,
}

/// A cgroup seen through the directories that hold its controllers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cgroup {
    pub dirs: Vec<CgDir>,
}

/// A cgroup file's text as the kernel gives it (empty when unreadable), for views that
/// show the raw value beside the parsed one.
pub fn read_raw(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

/// Errno of an io error, for trace lines.
fn io_errno(e: &std::io::Error) -> String {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
    format!("-1 {}", crate::kernel::sys::errno_text(errno))
}

/// Write `text` to a cgroup file, recorded as `write("path", "text") = n`.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write(text.as_bytes()));
    match &r {
        Ok(n) => trace::syscall(format!("write(\"{}\", \"{text}\") = {n}", path.display())),
        Err(e) => trace::syscall(format!(
            "write(\"{}\", \"{text}\") = {}",
            path.display(),
            io_errno(e)
        )),
    }
    r.with_context(|| format!("writing {text:?} to {}", path.display()))?;
    Ok(())
}

fn mkdir_traced(path: &Path) -> std::io::Result<()> {
    let r = std::fs::create_dir(path);
    let res = match &r {
        Ok(()) => "0".to_string(),
        Err(e) => io_errno(e),
    };
    trace::syscall(format!("mkdir(\"{}\", 0755) = {res}", path.display()));
    r
}

/// rmdir(2) of a cgroup directory, recorded in the trace (EBUSY while a process is inside).
pub fn rmdir_traced(path: &Path) -> std::io::Result<()> {
    let r = std::fs::remove_dir(path);
    let res = match &r {
        Ok(()) => "0".to_string(),
        Err(e) => io_errno(e),
    };
    trace::syscall(format!("rmdir(\"{}\") = {res}", path.display()));
    r
}

impl Cgroup {
    /// The same cgroup path (as /proc/PID/cgroup spells it) in every hierarchy holding one
    /// of `controllers`; hierarchies where the directory does not exist are left out.
    pub fn at_path(layout: &Layout, path: &str, controllers: &[&str]) -> Cgroup {
        let mut dirs: Vec<CgDir> = Vec::new();
        for c in controllers {
            let Some(home) = layout.home(c) else { continue };
            let Some(dir) = layout.dir_for_path(c, path) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            add_home(&mut dirs, home, c, dir);
        }
        Cgroup { dirs }
    }

    /// The cgroup whose directory is `dir`, holding `controllers`; `None` if `dir` is not
    /// (or no longer) there.
    pub fn at_dir(dir: &Path, controllers: &[&str]) -> Option<Cgroup> {
        dir.is_dir().then(|| Cgroup {
            dirs: vec![CgDir {
                version: version_of_dir(dir),
                controllers: controllers.iter().map(|c| c.to_string()).collect(),
                path: dir.to_path_buf(),
            }],
        })
    }

    /// The cgroup `pid` is in, for `controllers`.
    pub fn of_pid(layout: &Layout, pid: i32, controllers: &[&str]) -> Result<Cgroup> {
        let entries = proc_cgroup(pid)?;
        let mut dirs = Vec::new();
        for c in controllers {
            if let (Some(home), Some(dir)) = (layout.home(c), layout.dir_of(&entries, c)) {
                add_home(&mut dirs, home, c, dir);
            }
        }
        Ok(Cgroup { dirs })
    }

    /// The directory holding `controller`.
    pub fn dir_for(&self, controller: &str) -> Option<&CgDir> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
    }

    fn concept_dir(&self, concept: Concept) -> Result<&CgDir> {
        if concept == Concept::Procs {
            // Every hierarchy lists the processes; nslab puts them in all of its directories.
            if let Some(d) = self.dir_for("memory").or(self.dirs.first()) {
                return Ok(d);
            }
        }
        // Each version names the controller differently (cpuacct is v1 only), so try both.
        for v in [CgVersion::V1, CgVersion::V2] {
            if let Some(d) = self.dir_for(concept.controller(v)) {
                if d.version == v {
                    return Ok(d);
                }
            }
        }
        bail!(
            "{} needs the {} controller, which this cgroup does not have",
            concept.label(),
            concept.controller(CgVersion::V1)
        )
    }

    /// Read one concept.
    pub fn read(&self, concept: Concept) -> Result<Reading> {
        let d = self.concept_dir(concept)?;
        read_concept(&d.path, d.version, concept)
    }

    /// Every concept whose controller this cgroup has, for a table.
    pub fn read_all(&self, concepts: &[Concept]) -> Vec<ConceptValue> {
        concepts
            .iter()
            .filter_map(|&c| {
                let d = self.concept_dir(c).ok()?;
                Some(ConceptValue {
                    concept: c,
                    label: c.label(),
                    version: d.version,
                    file: c.file_label(d.version),
                    path: d.path.clone(),
                    reading: match c
                        .files(d.version)
                        .iter()
                        .find(|f| !d.path.join(f.file).exists())
                    {
                        // Root cgroups have no limit files (pids.max, memory.max): say so plainly.
                        Some(f) => Err(format!("no {} in this cgroup", f.file)),
                        None => read_concept(&d.path, d.version, c).map_err(|e| format!("{e:#}")),
                    },
                })
            })
            .collect()
    }

    /// Set a concept: writes the file(s) of the right version, each in the trace.
    pub fn set(&self, concept: Concept, value: &Reading) -> Result<()> {
        if !concept.spec().writable {
            bail!(
                "{} is a reading the kernel keeps; it cannot be set",
                concept.label()
            );
        }
        let d = self.concept_dir(concept)?;
        for (fr, text) in concepts::render_write(concept, d.version, value)? {
            write_file(&d.path.join(fr.file), &text)?;
        }
        Ok(())
    }

    /// Move a process into this cgroup in every hierarchy (`echo PID > cgroup.procs`).
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            write_file(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Keep the cgroup's memory out of swap, so its limit is a wall and not a slope into
    /// swapping: v2 `memory.swap.max` = 0, v1 `memory.swappiness` = 0 (the v1 memcg
    /// reclaims no anonymous memory to swap then). A file that does not exist (no swap
    /// accounting) is skipped. Returns the files written.
    pub fn forbid_swap(&self) -> Result<Vec<String>> {
        let Some(d) = self.dir_for("memory") else {
            bail!("this cgroup has no memory controller")
        };
        let file = no_swap_file(d.version);
        let p = d.path.join(file);
        if !p.exists() {
            return Ok(Vec::new());
        }
        write_file(&p, "0")?;
        Ok(vec![file.to_string()])
    }

    /// PIDs in it (from every directory, deduplicated).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for d in &self.dirs {
            all.extend(read_procs(&d.path)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }
}

fn add_home(dirs: &mut Vec<CgDir>, home: Home<'_>, controller: &str, dir: PathBuf) {
    if let Some(existing) = dirs.iter_mut().find(|d| d.path == dir) {
        if !existing.controllers.iter().any(|c| c == controller) {
            existing.controllers.push(controller.to_string());
        }
        return;
    }
    let (version, controllers) = match home {
        Home::V1(h) => (CgVersion::V1, h.controllers.clone()),
        Home::V2(_) => (CgVersion::V2, vec![controller.to_string()]),
    };
    dirs.push(CgDir {
        version,
        controllers,
        path: dir,
    });
}

/// Read one concept from a cgroup directory of version `v`.
pub fn read_concept(dir: &Path, v: CgVersion, concept: Concept) -> Result<Reading> {
    let mut texts = Vec::new();
    for fr in concept.files(v) {
        let p = dir.join(fr.file);
        texts
            .push(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    concepts::parse(concept, v, &refs).with_context(|| format!("in {}", dir.display()))
}

/// `cgroup.procs` of a directory; a directory already gone has none.
pub fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => Ok(concepts::parse_procs(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}/cgroup.procs", dir.display())),
    }
}

/// The controllers listed in a v2 `cgroup.subtree_control` / `cgroup.controllers`.
fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// On v2, the nearest cgroup at or above `start` (but inside `mount_point`) whose
/// children get every one of `controllers`: nslab's parent goes there.
pub fn delegating_ancestor(
    start: &Path,
    mount_point: &Path,
    controllers: &[&str],
    subtree_of: impl Fn(&Path) -> Vec<String>,
) -> Option<PathBuf> {
    let mut cur = start.to_path_buf();
    loop {
        let enabled = subtree_of(&cur);
        if controllers.iter().all(|c| enabled.iter().any(|e| e == c)) {
            return Some(cur);
        }
        if cur == mount_point || !cur.pop() || !cur.starts_with(mount_point) {
            return None;
        }
    }
}

/// A cgroup nslab made: `…/nslab/<name>` in each hierarchy it needs. Dropping it kills what
/// is left inside and removes the directories (and the `nslab` parents it made, if empty).
#[derive(Debug)]
pub struct NslabCgroup {
    pub cgroup: Cgroup,
    /// Directories nslab made, in creation order (parents before children).
    created: Vec<PathBuf>,
    removed: bool,
}

impl std::ops::Deref for NslabCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.cgroup
    }
}

/// Names nslab gives its cgroups: plain, so they are easy to type in an exercise.
fn check_name(name: &str) -> Result<()> {
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
fn make_dir_recorded(dir: &Path) -> Result<bool> {
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
fn remove_dir_of_run(dir: &Path) -> Result<()> {
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

fn missing_controller(layout: &Layout, c: &str) -> anyhow::Error {
    let fix = match layout.version {
        Version::Unified => format!(
            "the kernel offers no {c} controller on cgroup v2 (see /sys/fs/cgroup/cgroup.controllers); \
             boot a kernel with it enabled, or remove cgroup_disable={c} from the kernel command line"
        ),
        _ => format!("mount it:  sudo mkdir -p /sys/fs/cgroup/{c} && sudo mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"),
    };
    Problem::environment(
        format!("the {c} cgroup controller is not available on this machine"),
        fix,
    )
}

fn outside_mount(c: &str) -> anyhow::Error {
    Problem::environment(
        format!("nslab's own {c} cgroup is outside the mounted {c} hierarchy (a container with a private cgroup view?)"),
        "run nslab on the host, or in a container started with --cgroupns=host and a writable /sys/fs/cgroup",
    )
}

fn not_delegated(base: &Path, ctrls: &[&str]) -> anyhow::Error {
    let plus: Vec<String> = ctrls.iter().map(|c| format!("+{c}")).collect();
    Problem::environment(
        format!(
            "cgroup v2: no cgroup from {} up to the root hands the {} controller(s) to its children (cgroup.subtree_control)",
            base.display(),
            ctrls.join(", ")
        ),
        format!(
            "enable them for the top level:  echo '{}' | sudo tee /sys/fs/cgroup/cgroup.subtree_control\n\
             or run nslab in a delegated scope:  sudo systemd-run --scope -p Delegate=yes nslab …",
            plus.join(" ")
        ),
    )
}

/// Does the path look like one of nslab's cgroups (a guard against a damaged ledger)?
fn is_nslab_path(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with("nslab"))
}

/// SIGKILL everything in a cgroup directory nslab made, until `cgroup.procs` is empty.
fn kill_inside(dir: &Path) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = read_procs(dir)?;
        if pids.is_empty() {
            return Ok(());
        }
        // A killed process leaves cgroup.procs as soon as it is a zombie; reaping is left
        // to the handle that forked it (reaping here could let it kill a reused PID later).
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if Instant::now() > deadline {
            bail!(
                "processes {pids:?} in {} did not end after SIGKILL",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Removal {
    Gone,
    /// A `nslab` parent that still holds another run's cgroup.
    LeftInPlace,
}

/// Remove a cgroup directory nslab made: kill what is inside, remove sub-cgroups first,
/// then rmdir. Already gone counts as removed; a `nslab` parent that still holds another
/// run's cgroups is left in place (and counts as done).
pub fn remove_cgroup(path: &Path) -> Result<()> {
    remove_inner(path).map(|_| ())
}

fn remove_inner(path: &Path) -> Result<Removal> {
    if !is_nslab_path(path) {
        bail!("refusing to remove {}: not an nslab cgroup", path.display());
    }
    // Most often the cgroup is empty by now: one rmdir does it. The kernel refuses it
    // (EBUSY) while a process or a sub-cgroup is inside, and then the careful way below
    // kills and removes what is there first.
    match rmdir_traced(path) {
        Ok(()) => return Ok(Removal::Gone),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(_) => {}
    }
    if !path.is_dir() {
        return Ok(Removal::Gone);
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    let is_parent = path.file_name().is_some_and(|n| n == "nslab");
    if is_parent && !subdirs.is_empty() {
        return Ok(Removal::LeftInPlace);
    }
    // Sub-cgroups inside a cgroup nslab made are nslab's to remove too.
    for sub in &subdirs {
        remove_inner(sub)?;
    }
    kill_inside(path)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rmdir_traced(path) {
            Ok(()) => return Ok(Removal::Gone),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
            // Just-killed tasks may still be leaving the cgroup; a parent may have gained
            // a child from another run meanwhile (leave it then).
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
            {
                if is_parent {
                    return Ok(Removal::LeftInPlace);
                }
                if Instant::now() > deadline {
                    return Err(e).with_context(|| format!("rmdir {}", path.display()));
                }
                kill_inside(path)?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("rmdir {}", path.display())),
        }
    }
}

/// One cgroup found by walking a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    pub dir: PathBuf,
    /// As /proc/PID/cgroup and the kernel log spell it.
    pub path: String,
    pub version: CgVersion,
    /// Last change of the directory (its creation, or a child's), seconds since the epoch.
    pub changed: i64,
}

/// Every cgroup below the root of the hierarchy holding `controller` (the root itself
/// excluded), at most `max` of them, parents before children.
pub fn walk(layout: &Layout, controller: &str, max: usize) -> Vec<Found> {
    use std::os::unix::fs::MetadataExt;
    let Some((mount, version)) = layout.mount_of(controller) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([mount]);
    while let Some(dir) = queue.pop_front() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut subs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        subs.sort();
        for sub in subs {
            if out.len() >= max {
                return out;
            }
            let Some(path) = layout.path_in_hierarchy(controller, &sub) else {
                continue;
            };
            let changed = std::fs::metadata(&sub).map(|m| m.ctime()).unwrap_or(0);
            out.push(Found {
                dir: sub.clone(),
                path,
                version,
                changed,
            });
            queue.push_back(sub);
        }
    }
    out
}

/// Whether a controller can be used by nslab here, and where; with the fix when not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControllerStatus {
    pub controller: String,
    pub version: Option<CgVersion>,
    pub usable: bool,
    /// Where nslab's cgroups for it would go (`…/nslab`).
    pub parent: Option<PathBuf>,
    pub problem: Option<String>,
    pub fix: Option<String>,
}

/// Pure: availability of `controllers` given the layout, the caller's /proc/self/cgroup and
/// a reader of v2 `cgroup.subtree_control` files.
pub fn availability_from(
    layout: &Layout,
    own: &[ProcCgroup],
    controllers: &[&str],
    subtree_of: impl Fn(&Path) -> Vec<String>,
) -> Vec<ControllerStatus> {
    controllers
        .iter()
        .map(|&c| {
            let mut st = ControllerStatus {
                controller: c.to_string(),
                version: None,
                usable: false,
                parent: None,
                problem: None,
                fix: None,
            };
            let problem = |e: anyhow::Error| {
                let p = e.downcast_ref::<Problem>();
                (format!("{e}"), p.and_then(|p| p.fix()).map(String::from))
            };
            match layout.home(c) {
                None => {
                    (st.problem, st.fix) = {
                        let (m, f) = problem(missing_controller(layout, c));
                        (Some(m), f)
                    }
                }
                Some(home) => {
                    let v2 = matches!(home, Home::V2(_));
                    st.version = Some(if v2 { CgVersion::V2 } else { CgVersion::V1 });
                    match layout.dir_of(own, c) {
                        None => {
                            let (m, f) = problem(outside_mount(c));
                            (st.problem, st.fix) = (Some(m), f);
                        }
                        Some(base) if v2 => {
                            let Home::V2(u) = home else { unreachable!() };
                            match delegating_ancestor(&base, &u.mount_point, &[c], &subtree_of) {
                                Some(a) => {
                                    st.usable = true;
                                    st.parent = Some(a.join("nslab"));
                                }
                                None => {
                                    let (m, f) = problem(not_delegated(&base, &[c]));
                                    (st.problem, st.fix) = (Some(m), f);
                                }
                            }
                        }
                        Some(base) => {
                            st.usable = true;
                            st.parent = Some(base.join("nslab"));
                        }
                    }
                }
            }
            st
        })
        .collect()
}

/// Availability of memory, cpu and pids on this machine, for `nslab doctor`.
pub fn availability() -> Result<Vec<ControllerStatus>> {
    let layout = Layout::read()?;
    let own = own_cgroup()?;
    Ok(availability_from(&layout, &own, &LESSON_CONTROLLERS, |p| {
        read_list(&p.join("cgroup.subtree_control"))
    }))
}

#[cfg(test)]
mod tests;
