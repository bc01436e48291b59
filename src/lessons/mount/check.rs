//! Check 7: a shell of the learner's in a mount namespace of its own, an overlay mounted
//! there (not in the host's) with two or more lower layers, an upper and a work directory;
//! a lower file changed and another deleted through it; the lower layers unchanged.

use crate::checks::whose::{self, Recorded, Whose};
use crate::kernel::mountinfo::{self, Mount, OverlayLayers};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::overlay::{self, EntryKind, Layer};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct MountCheck;

/// An overlay mounted in a learner's namespace, and what its layers hold.
#[derive(Clone, Debug)]
pub struct SeenOverlay {
    pub mount: Mount,
    pub layers: OverlayLayers,
    /// Each lower layer, topmost first.
    pub lower: Vec<Layer>,
    pub upper: Option<Layer>,
    pub work: Option<Layer>,
}

/// A mount namespace other than the host's, seen through one of its processes.
#[derive(Clone, Debug)]
pub struct Space {
    /// The process it was read through (a shell when there is one).
    pub pid: i32,
    pub mnt_ns: u64,
    /// The learner's overlays in its table, in the table's order.
    pub overlays: Vec<SeenOverlay>,
}

pub struct Seen {
    /// nslab's own mount namespace: the host's, as far as the learner's work goes.
    pub host_mnt: u64,
    pub host_mounts: Vec<Mount>,
    pub table: Vec<ProcInfo>,
    /// The learner's mount namespaces (or the one `--pid` names).
    pub spaces: Vec<Space>,
    /// Mount namespaces of others (containers, services, nslab's own lessons) left alone.
    pub ignored: usize,
    /// `--pid`, and the mount namespace it is in.
    pub asked: Option<(i32, Option<u64>)>,
}

const OWN: &str = "mount namespace";
const OVERLAY: &str = "overlay";
const LOWER: &str = "lower layers";
const UPPER: &str = "upper layer";
const COPIED: &str = "copied up";
const WHITEOUT: &str = "whiteout";
const UNCHANGED: &str = "lower layers unchanged";

fn mnt_of(pid: i32) -> Option<u64> {
    ns::link(pid, NsKind::Mnt).inode
}

/// Read the layers of `ov` as process `pid` sees them (read only, bounded).
fn read_layers(pid: i32, mount: &Mount, layers: OverlayLayers) -> SeenOverlay {
    let read = |p: &PathBuf| overlay::read_layer(p, &overlay::seen_by(pid, p), false);
    SeenOverlay {
        mount: mount.clone(),
        lower: layers.lower.iter().map(read).collect(),
        upper: layers.upper.as_ref().map(read),
        work: layers.work.as_ref().map(read),
        layers,
    }
}

impl Check for MountCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let me = std::process::id() as i32;
        let host_mnt = mnt_of(me).context("reading nslab's own /proc/self/ns/mnt")?;
        let host_mounts = mountinfo::own()?;
        let table = procs::table().context("reading the process table")?;
        let recorded = Recorded::read();
        crate::checks::require_listed(
            &table,
            args.pid,
            "give the host PID of the shell in your mount namespace (ps -ef --forest)",
        )?;
        let asked = args.pid.map(|pid| (pid, mnt_of(pid)));
        // One process per namespace: the one asked for, else the newest shell, else the
        // newest process of the learner's in it.
        let mut chosen: Vec<(u64, &ProcInfo)> = Vec::new();
        let mut others = std::collections::BTreeSet::new();
        for p in table.iter().filter(|p| !p.is_zombie()) {
            let Some(mnt) = mnt_of(p.pid) else { continue };
            if mnt == host_mnt {
                continue;
            }
            let wanted = match asked {
                Some((pid, _)) => p.pid == pid,
                None => whose::process(&table, p.pid, &recorded) == Whose::Learner,
            };
            if !wanted {
                others.insert(mnt);
                continue;
            }
            let rank = |q: &ProcInfo| (procs::is_shell(&q.comm), q.start_time);
            match chosen.iter_mut().find(|(m, _)| *m == mnt) {
                Some(slot) if rank(p) > rank(slot.1) => slot.1 = p,
                Some(_) => {}
                None => chosen.push((mnt, p)),
            }
        }
        let mut spaces = Vec::new();
        for (mnt, p) in chosen {
            others.remove(&mnt);
            let Ok(mounts) = mountinfo::of_pid(p.pid) else {
                continue; // it has just exited
            };
            let overlays = mounts
                .iter()
                .filter(|m| whose::mount(m) == Whose::Learner)
                .filter_map(|m| Some((m, m.overlay()?)))
                .map(|(m, layers)| read_layers(p.pid, m, layers))
                .collect();
            spaces.push(Space {
                pid: p.pid,
                mnt_ns: mnt,
                overlays,
            });
        }
        Ok(Seen {
            host_mnt,
            host_mounts,
            table,
            spaces,
            ignored: others.len(),
            asked,
        })
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

fn facts(values: [&str; 7]) -> Vec<Fact> {
    [OWN, OVERLAY, LOWER, UPPER, COPIED, WHITEOUT, UNCHANGED]
        .iter()
        .zip(values)
        .map(|(n, v)| Fact::new(*n, v))
        .collect()
}

fn process_name(s: &Seen, pid: i32) -> String {
    s.table
        .iter()
        .find(|p| p.pid == pid)
        .map(|p| format!("`{}` (host PID {pid})", p.comm))
        .unwrap_or_else(|| format!("PID {pid}"))
}

/// The learner's overlays in the host's own table.
fn host_overlays(s: &Seen) -> Vec<&Mount> {
    s.host_mounts
        .iter()
        .filter(|m| m.fs_type == "overlay" && whose::mount(m) == Whose::Learner)
        .collect()
}

fn judge(s: &Seen) -> Observation {
    let mut notes = vec![
        "nslab judges a mount namespace other than its own that holds a shell of yours (made with \
         `unshare --mount`); containers, services and nslab's own lessons are left alone; --pid PID picks one"
            .to_string(),
    ];
    if s.ignored > 0 {
        notes.push(format!(
            "ignored {} other mount namespace(s) (containers, services, nslab's own)",
            s.ignored
        ));
    }
    let on_host = host_overlays(s);
    if let Some((pid, mnt)) = s.asked {
        if mnt == Some(s.host_mnt) {
            let mut obs = not_found(s, notes);
            obs.judged = format!(
                "{}, in the host's mount namespace mnt:[{}]",
                process_name(s, pid),
                s.host_mnt
            );
            if on_host.is_empty() {
                obs.facts[0].value = "the host's (the PID you gave shares it)".into();
                obs.problem = Some("shared-namespace");
            }
            return obs;
        }
    }
    let newest_first = |a: &&Space, b: &&Space| start_of(s, b.pid).cmp(&start_of(s, a.pid));
    let mut with_overlay: Vec<&Space> = s
        .spaces
        .iter()
        .filter(|sp| !sp.overlays.is_empty())
        .collect();
    with_overlay.sort_by(newest_first);
    if let Some(space) = with_overlay.first() {
        if with_overlay.len() > 1 {
            notes.push(format!(
                "{} of your mount namespaces hold an overlay; judging the newest",
                with_overlay.len()
            ));
        }
        let ov = space.overlays.last().expect("filtered on overlays");
        if space.overlays.len() > 1 {
            notes.push(format!(
                "{} overlays are mounted there; judging the last mounted, on {}",
                space.overlays.len(),
                ov.mount.mount_point.display()
            ));
        }
        return judge_overlay(s, space, ov, notes);
    }
    let mut bare: Vec<&Space> = s.spaces.iter().collect();
    bare.sort_by(newest_first);
    if let Some(m) = on_host.last() {
        let mut obs = not_found(s, notes);
        obs.judged = format!(
            "an overlay of yours on {} in the host's mount namespace mnt:[{}]",
            m.mount_point.display(),
            s.host_mnt
        );
        if let Some(space) = bare.first() {
            obs.facts[0].value = "its own, not the host's".into();
            obs.notes.push(format!(
                "your {} has a mount namespace of its own, but the overlay is not in it",
                process_name(s, space.pid)
            ));
        }
        obs.facts[1].value = "in the host's namespace".into();
        obs.problem = Some("host-namespace");
        return obs;
    }
    if let Some(space) = bare.first() {
        let mut obs = not_found(s, notes);
        obs.judged = format!(
            "the mount namespace mnt:[{}] of {}: no overlay of yours in it",
            space.mnt_ns,
            process_name(s, space.pid)
        );
        obs.facts[0].value = "its own, not the host's".into();
        obs.facts[1].value = "none mounted there".into();
        obs.problem = Some("no-overlay");
        obs.verify = vec![
            format!("sudo grep overlay /proc/{}/mountinfo", space.pid),
            format!("sudo readlink /proc/{}/ns/mnt /proc/self/ns/mnt", space.pid),
        ];
        return obs;
    }
    not_found(s, notes)
}

fn start_of(s: &Seen, pid: i32) -> u64 {
    s.table
        .iter()
        .find(|p| p.pid == pid)
        .map(|p| p.start_time)
        .unwrap_or(0)
}

fn not_found(_s: &Seen, notes: Vec<String>) -> Observation {
    Observation {
        judged: "no shell of yours is in a mount namespace of its own".into(),
        facts: facts(["not found", "-", "-", "-", "-", "-", "-"]),
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -A1 unshare".into(),
            "sudo lsns -t mnt".into(),
            "grep overlay /proc/self/mountinfo".into(),
        ],
        notes,
    }
}

/// The topmost lower layer holding `path`, as `kind`.
fn in_lower<'a>(ov: &'a SeenOverlay, path: &Path, kind: EntryKind) -> Option<&'a Layer> {
    ov.lower
        .iter()
        .find(|l| l.entry(path).is_some_and(|e| e.kind == kind))
}

fn judge_overlay(s: &Seen, space: &Space, ov: &SeenOverlay, mut notes: Vec<String>) -> Observation {
    let mut problem: Option<&'static str> = None;
    let mut fail = |id: &'static str| {
        problem = problem.or(Some(id));
    };
    let in_host = s
        .host_mounts
        .iter()
        .any(|m| m.fs_type == "overlay" && (m.major, m.minor) == (ov.mount.major, ov.mount.minor));
    let overlay_fact = if in_host {
        fail("host-namespace");
        "also in the host's namespace (the same overlay)"
    } else {
        "mounted there, not in the host's namespace"
    };
    let lower_fact = match ov.lower.len() {
        0 | 1 => {
            fail("one-lower");
            "one only"
        }
        _ => "two or more",
    };
    let upper_fact = match (&ov.upper, &ov.work) {
        (Some(_), Some(_)) => "an upper and a work directory",
        _ => {
            fail("no-upper");
            "none: a read-only overlay"
        }
    };
    for l in ov.lower.iter().chain(ov.upper.iter()).chain(ov.work.iter()) {
        if let Some(why) = &l.unreadable {
            notes.push(format!(
                "layer {} could not be read: {why}",
                l.dir.display()
            ));
        }
        if l.truncated {
            notes.push(format!(
                "layer {} is large: only its first {} entries were read",
                l.dir.display(),
                overlay::MAX_ENTRIES
            ));
        }
    }
    if ov
        .layers
        .lower
        .iter()
        .chain(ov.layers.upper.iter())
        .any(|p| p.is_relative())
    {
        notes.push(format!(
            "the overlay was mounted with relative paths: they were read from the shell's current directory (/proc/{}/cwd)",
            space.pid
        ));
    }
    let empty = Layer::default();
    let upper = ov.upper.as_ref().unwrap_or(&empty);
    let copied: Vec<&Path> = upper
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter(|e| in_lower(ov, &e.path, EntryKind::File).is_some())
        .map(|e| e.path.as_path())
        .collect();
    let copied_fact = if ov.upper.is_none() {
        "-"
    } else if copied.is_empty() {
        fail("nothing-written");
        "nothing copied up"
    } else {
        "a lower file changed through the overlay, its copy in upper"
    };

    // When the overlay was mounted: mounting makes WORK/work anew, which changes WORK; no
    // later change through the overlay touches WORK itself (only WORK/work).
    let mounted_at = ov.work.as_ref().and_then(|w| w.mtime_ns);
    let changed: Vec<String> = match mounted_at {
        Some(t) => ov
            .lower
            .iter()
            .flat_map(|l| {
                let top = l
                    .mtime_ns
                    .filter(|&m| m > t)
                    .map(|_| l.dir.display().to_string());
                let inside = l
                    .entries
                    .iter()
                    .filter(move |e| e.ctime_ns > t)
                    .map(move |e| l.dir.join(&e.path).display().to_string());
                top.into_iter().chain(inside)
            })
            .collect(),
        None => Vec::new(),
    };
    if mounted_at.is_none() && ov.work.is_some() {
        notes.push(
            "the work directory could not be read: when the overlay was mounted is unknown".into(),
        );
    }
    let whiteouts: Vec<&Path> = upper.whiteouts().map(|e| e.path.as_path()).collect();
    let hiding: Vec<&Path> = whiteouts
        .iter()
        .copied()
        .filter(|p| ov.lower.iter().any(|l| l.entry(p).is_some()))
        .collect();
    let whiteout_fact = if ov.upper.is_none() {
        "-".to_string()
    } else if !hiding.is_empty() {
        "a lower file deleted through the overlay, a 0/0 character device in upper".to_string()
    } else if !whiteouts.is_empty() {
        fail("deleted-in-lower");
        "a whiteout that hides nothing: the file is gone from its lower layer too".to_string()
    } else if !changed.is_empty() {
        fail("deleted-in-lower");
        "none: a lower layer changed instead".to_string()
    } else {
        fail("nothing-deleted");
        "none".to_string()
    };
    let gone = whiteouts.len() - hiding.len();
    let unchanged_fact = if changed.is_empty() && gone == 0 {
        "yes".to_string()
    } else {
        fail("lower-changed");
        let mut why = Vec::new();
        if !changed.is_empty() {
            why.push(format!(
                "{} changed after the overlay was mounted",
                plural(changed.len(), "entry", "entries")
            ));
            notes.push(format!("changed in a lower layer: {}", shorten(&changed)));
        }
        if gone > 0 {
            why.push(format!(
                "{} deleted through the overlay gone from the lower layers",
                plural(gone, "file", "files")
            ));
        }
        format!("no: {}", why.join("; "))
    };
    let mut judged = format!(
        "the mount namespace mnt:[{}] of {}; overlay on {} ({})",
        space.mnt_ns,
        process_name(s, space.pid),
        ov.mount.mount_point.display(),
        ov.mount.super_options
    );
    if let Some(f) = copied.first() {
        judged.push_str(&format!("; copied up: {}", f.display()));
    }
    if let Some(w) = hiding.first().or(whiteouts.first()) {
        judged.push_str(&format!("; whiteout: {}", w.display()));
    }
    let mut verify = vec![
        format!("sudo readlink /proc/{}/ns/mnt /proc/self/ns/mnt", space.pid),
        format!("sudo grep overlay /proc/{}/mountinfo", space.pid),
        "grep overlay /proc/self/mountinfo".to_string(),
    ];
    if let Some(u) = &ov.layers.upper {
        verify.push(format!(
            "sudo ls -l {}",
            overlay::seen_by(space.pid, u).display()
        ));
    }
    Observation {
        judged,
        facts: facts([
            "its own, not the host's",
            overlay_fact,
            lower_fact,
            upper_fact,
            copied_fact,
            &whiteout_fact,
            &unchanged_fact,
        ]),
        problem,
        verify,
        notes,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn shorten(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(&format!(" and {} more", items.len() - 5));
    }
    s
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
