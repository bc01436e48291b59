//! A cgroup seen through the directories that hold its controllers: its concepts read
//! and written in the file of each version, its processes.

use super::io::{read_procs, write_file};
use super::{concepts, proc_cgroup, version_of_dir, CgVersion, Concept, Home, Layout, Reading};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

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

pub(super) fn add_home(dirs: &mut Vec<CgDir>, home: Home<'_>, controller: &str, dir: PathBuf) {
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

/// The file [`Cgroup::forbid_swap`] writes `0` into: v2 `memory.swap.max`, v1
/// `memory.swappiness`.
pub fn no_swap_file(version: CgVersion) -> &'static str {
    match version {
        CgVersion::V1 => "memory.swappiness",
        CgVersion::V2 => "memory.swap.max",
    }
}
