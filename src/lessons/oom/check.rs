//! Check 3: a memory cgroup of the learner's, limited to 30 MB, whose hog the kernel
//! OOM-killed.

use crate::checks::whose::{self, Recorded, Whose};
use crate::error::Problem;
use crate::kernel::cgroup::concepts::{self, human_bytes};
use crate::kernel::cgroup::{self, kmsg, CgVersion, Cgroup, Concept, Home, Layout, Max, Reading};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct OomCheck;

/// One memory cgroup as the check read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemCgroup {
    pub dir: PathBuf,
    /// As /proc/PID/cgroup and the kernel log spell it.
    pub path: String,
    pub version: CgVersion,
    /// Last change of the directory, seconds since the epoch.
    pub changed: i64,
    /// `None`: the limit file could not be read as a limit (not judged at all).
    pub limit: Option<Max>,
    /// oom_kill; 0 when unreadable.
    pub kills: u64,
    /// The peak (or, without one, the usage now); `None` when neither reads as bytes.
    pub peak: Option<u64>,
    /// failcnt / memory.events max; 0 when unreadable.
    pub failcnt: u64,
    /// The limit file as the kernel wrote it.
    pub raw_limit: String,
}

/// What `--cgroup` or `--pid` picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    Nothing,
    /// `--cgroup WANT`: the cgroup it names, if any.
    Cgroup(String, Option<MemCgroup>),
    /// `--pid PID`: that process's memory cgroup.
    Pid(i32, MemCgroup),
}

/// Every memory cgroup of the machine, what nslab made, and the kernel's log of OOM kills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The memory controller's version on this machine.
    pub version: CgVersion,
    /// Where the memory controller's hierarchy is mounted.
    pub mount: Option<PathBuf>,
    pub all: Vec<MemCgroup>,
    pub recorded: Recorded,
    pub asked: Asked,
    /// The kernel log's OOM kills; `None` when /dev/kmsg cannot be read.
    pub log: Option<Vec<kmsg::OomKill>>,
}

pub(super) const FOUND: &str = "memory cgroup";
pub(super) const LIMIT: &str = "memory limit";
pub(super) const USED: &str = "a process used its memory";
pub(super) const KILLS: &str = "OOM kills";
pub(super) const VICTIM: &str = "killed process was in it";

pub(super) fn is_30mb(bytes: u64) -> bool {
    concepts::same_limit(bytes, 30_000_000) || concepts::same_limit(bytes, 30 << 20)
}

/// The files of the memory cgroup at `dir`; `limit` is `None` when there is no limit to read.
/// Without `full`, only a cgroup that may be judged is read further (thousands are walked).
fn read_cgroup(dir: &Path, path: &str, version: CgVersion, changed: i64, full: bool) -> MemCgroup {
    let read = |c: Concept| cgroup::read_concept(dir, version, c).ok();
    let limit = match read(Concept::MemoryLimit) {
        Some(Reading::Limit(m)) => Some(m),
        _ => None,
    };
    let count = |c: Concept| match read(c) {
        Some(Reading::Count(n)) => n,
        _ => 0,
    };
    let judgeable =
        full || limit.is_some_and(|m| m != Max::Unlimited) || count(Concept::OomKills) > 0;
    let (peak, failcnt, raw_limit) = if judgeable {
        let peak = match read(Concept::MemoryPeak).or_else(|| read(Concept::MemoryUsage)) {
            Some(Reading::Bytes(b)) => Some(b),
            _ => None,
        };
        let limit_file = Concept::MemoryLimit.files(version)[0].file;
        (
            peak,
            count(Concept::MemoryFailcnt),
            cgroup::read_raw(dir, limit_file),
        )
    } else {
        (None, 0, String::new())
    };
    MemCgroup {
        dir: dir.to_path_buf(),
        path: path.to_string(),
        version,
        changed,
        limit,
        kills: count(Concept::OomKills),
        peak,
        failcnt,
        raw_limit,
    }
}

impl Check for OomCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let layout = Layout::read()?;
        let version =
            match layout.home("memory") {
                Some(Home::V1(_)) => CgVersion::V1,
                Some(Home::V2(_)) => CgVersion::V2,
                None => return Err(Problem::environment(
                    "this machine has no memory cgroup controller, so there is nothing to check",
                    "see `nslab doctor`",
                )),
            };
        let found = cgroup::walk(&layout, "memory", 20_000);
        let asked = if let Some(want) = &args.cgroup {
            let hit = resolve(&layout, &found, want)
                .map(|(d, p, ch)| read_cgroup(&d, &p, version, ch, true))
                .filter(|c| c.limit.is_some());
            Asked::Cgroup(want.clone(), hit)
        } else if let Some(pid) = args.pid {
            let cg = Cgroup::of_pid(&layout, pid, &["memory"]).map_err(|_| {
                Problem::usage(
                    format!("there is no process with PID {pid}"),
                    "give the PID of a process in your cgroup, or use --cgroup",
                )
            })?;
            let d = cg
                .dir_for("memory")
                .context("no memory cgroup for that PID")?;
            let path = layout
                .path_in_hierarchy("memory", &d.path)
                .unwrap_or_default();
            let c = read_cgroup(&d.path, &path, version, 0, true);
            if c.limit.is_none() {
                return Err(anyhow::anyhow!("no memory limit file"))
                    .context("reading that cgroup's memory files");
            }
            Asked::Pid(pid, c)
        } else {
            Asked::Nothing
        };
        let all = match asked {
            Asked::Nothing => found
                .iter()
                .map(|f| read_cgroup(&f.dir, &f.path, f.version, f.changed, false))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Seen {
            version,
            mount: layout.mount_of("memory").map(|(m, _)| m),
            all,
            recorded: Recorded::read(),
            asked,
            log: kmsg::read_records().map(|r| kmsg::oom_kills(&r)),
        })
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

/// `--cgroup`: a directory, a path as /proc/PID/cgroup spells it, or a name.
fn resolve(layout: &Layout, all: &[cgroup::Found], want: &str) -> Option<(PathBuf, String, i64)> {
    let by_dir = |d: &Path| {
        all.iter()
            .find(|f| f.dir == d)
            .map(|f| (f.dir.clone(), f.path.clone(), f.changed))
    };
    let p = Path::new(want);
    if p.is_absolute() && p.is_dir() && layout.path_in_hierarchy("memory", p).is_some() {
        return by_dir(p);
    }
    if want.starts_with('/') {
        if let Some(d) = layout.dir_for_path("memory", want) {
            if let Some(hit) = by_dir(&d) {
                return Some(hit);
            }
        }
    }
    let name = want.trim_matches('/');
    all.iter()
        .filter(|f| {
            f.path.trim_start_matches('/') == name || f.dir.file_name().is_some_and(|n| n == name)
        })
        .max_by_key(|f| f.changed)
        .map(|f| (f.dir.clone(), f.path.clone(), f.changed))
}

const HOW: &str = "nslab judges a memory cgroup that has a memory limit or an OOM kill, leaving out nslab's own \
                   (its record of what it made), systemd units and container runtimes' cgroups; it prefers one \
                   limited to 30 MB, then the most recently changed; --cgroup NAME-OR-PATH picks one";

fn judge(s: &Seen) -> Observation {
    let mut notes = vec![HOW.to_string()];
    match &s.asked {
        Asked::Cgroup(want, Some(c)) => {
            notes.push(format!("judging {want}, as asked with --cgroup"));
            return judge_one(s, c, notes);
        }
        Asked::Cgroup(want, None) => {
            return no_cgroup(s, notes, Some(format!("there is no memory cgroup {want}")))
        }
        Asked::Pid(pid, c) => {
            notes.push(format!(
                "judging the memory cgroup of PID {pid}, as asked with --pid"
            ));
            return judge_one(s, c, notes);
        }
        Asked::Nothing => {}
    }

    let (mut own, mut strangers) = (0, 0);
    let mut candidates: Vec<(&MemCgroup, Max)> = Vec::new();
    for c in &s.all {
        match whose::cgroup(&c.path, &c.dir, &s.recorded) {
            Whose::Nslab => {
                own += 1;
                continue;
            }
            Whose::Stranger => {
                strangers += 1;
                continue;
            }
            Whose::Learner => {}
        }
        if let Some(limit) = c.limit {
            if limit != Max::Unlimited || c.kills > 0 {
                candidates.push((c, limit));
            }
        }
    }
    candidates
        .sort_by_key(|(c, limit)| (limit.value().is_some_and(is_30mb), c.kills > 0, c.changed));
    if own + strangers > 0 {
        notes.push(format!("left out {own} cgroup(s) of nslab's own and {strangers} of systemd or container runtimes"));
    }
    let Some((best, _)) = candidates.pop() else {
        return no_cgroup(s, notes, None);
    };
    if !candidates.is_empty() {
        let others: Vec<&str> = candidates
            .iter()
            .rev()
            .take(5)
            .map(|(c, _)| c.path.as_str())
            .collect();
        notes.push(format!("also seen and not judged: {}", others.join(", ")));
    }
    judge_one(s, best, notes)
}

fn no_cgroup(s: &Seen, mut notes: Vec<String>, why: Option<String>) -> Observation {
    if let Some(w) = why {
        notes.push(w);
    }
    // Where this machine mounts the memory controller's hierarchy.
    let root = s
        .mount
        .as_ref()
        .map_or("/sys/fs/cgroup".into(), |m| m.display().to_string());
    let limit_file = Concept::MemoryLimit.files(s.version)[0].file;
    Observation {
        judged: "no memory cgroup of yours with a limit or an OOM kill was found".into(),
        facts: vec![
            Fact::new(FOUND, "not found"),
            Fact::new(LIMIT, "-"),
            Fact::new(USED, "-"),
            Fact::new(KILLS, "-"),
            Fact::new(VICTIM, "-"),
        ],
        problem: Some("no-cgroup"),
        verify: vec![format!(
            "find {root} -name {limit_file} | xargs grep -v -e 9223372036854771712 -e max"
        )],
        notes,
    }
}

fn judge_one(s: &Seen, c: &MemCgroup, mut notes: Vec<String>) -> Observation {
    let v = c.version;
    let peak = c.peak.unwrap_or(0);
    let limit = c.limit.unwrap_or(Max::Unlimited);
    let mut problem = None;
    let limit_fact = match limit {
        Max::Value(b) if is_30mb(b) => "30 MB".to_string(),
        Max::Value(b) => {
            problem = Some("wrong-limit");
            format!("{} ({b} bytes), not 30 MB", human_bytes(b))
        }
        Max::Unlimited => {
            problem = Some("wrong-limit");
            "none (unlimited)".to_string()
        }
    };
    // A hog that ran inside leaves a peak near the limit; an idle shell that joined does not.
    let threshold = match limit {
        Max::Value(b) => (b / 2).min(8 << 20),
        Max::Unlimited => 8 << 20,
    };
    let used = c.kills > 0 || c.failcnt > 0 || peak >= threshold;
    if !used {
        problem = problem.or(Some("never-joined"));
    }
    if c.kills == 0 {
        problem = problem.or(Some("nothing-killed"));
    }
    let mut mine: Vec<&kmsg::OomKill> = s
        .log
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|k| {
            k.oom_memcg.as_deref() == Some(c.path.as_str())
                || k.task_memcg
                    .as_deref()
                    .is_some_and(|t| t == c.path || t.starts_with(&format!("{}/", c.path)))
        })
        .collect();
    // The log outlives the cgroup: lines for an earlier cgroup at the same path are not this
    // one's. Its own counter says how many kills are its own, the newest ones.
    let own_kills = usize::try_from(c.kills).unwrap_or(usize::MAX);
    let older = mine.len().saturating_sub(own_kills);
    mine.drain(..older);
    let victim_fact = match (&s.log, c.kills) {
        (_, 0) => "no: nothing was killed in it".to_string(),
        (None, _) => {
            notes.push("the kernel log cannot be read here: the kill is judged from the oom_kill counter alone".into());
            "yes".to_string()
        }
        (Some(_), _) if !mine.is_empty() => "yes".to_string(),
        (Some(_), _) => {
            notes.push("the kernel log has no line left for this cgroup's kill (overwritten?): judged from oom_kill".into());
            "yes".to_string()
        }
    };
    let limit_file = Concept::MemoryLimit.files(v)[0].file;
    let oom_file = Concept::OomKills.files(v)[0].file;
    let last = mine
        .last()
        .map(|k| format!("; the kernel's last kill there: {} (PID {})", k.task, k.pid))
        .unwrap_or_default();
    Observation {
        judged: format!(
            "memory cgroup {} (cgroup {}, directory {}): {limit_file} = {}, oom_kill {}, peak {}{last}",
            c.path,
            v.label(),
            c.dir.display(),
            c.raw_limit.trim(),
            c.kills,
            human_bytes(peak)
        ),
        facts: vec![
            Fact::new(FOUND, "found"),
            Fact::new(LIMIT, limit_fact),
            Fact::new(USED, if used { "yes" } else { "no" }),
            Fact::new(KILLS, if c.kills > 0 { "at least 1".to_string() } else { "none".to_string() }),
            Fact::new(VICTIM, victim_fact),
        ],
        problem,
        verify: vec![
            format!("cat {}/{limit_file}", c.dir.display()),
            format!("cat {}/{oom_file}", c.dir.display()),
            format!("sudo dmesg | grep -A1 'oom_memcg={}'", c.path),
        ],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::lessons::oom::INFO;

    const MOUNT: &str = "/sys/fs/cgroup/memory";

    fn cg(path: &str, limit: Max, kills: u64, peak: u64) -> MemCgroup {
        MemCgroup {
            dir: PathBuf::from(format!("{MOUNT}{path}")),
            path: path.into(),
            version: CgVersion::V1,
            changed: 100,
            limit: Some(limit),
            kills,
            peak: Some(peak),
            failcnt: kills * 20,
            raw_limit: match limit {
                Max::Value(b) => format!("{b}\n"),
                Max::Unlimited => "9223372036854771712\n".into(),
            },
        }
    }

    fn kill(memcg: &str) -> kmsg::OomKill {
        kmsg::OomKill {
            seq: 7,
            usec: 1,
            constraint: "CONSTRAINT_MEMCG".into(),
            oom_memcg: Some(memcg.into()),
            task_memcg: Some(memcg.into()),
            task: "tail".into(),
            pid: 4242,
            line: String::new(),
            killed_line: None,
        }
    }

    /// The learner's `/demo` limited to 30 MB, its `tail /dev/zero` killed; a service with a
    /// limit and nslab's own lesson cgroup beside it.
    fn machine() -> Seen {
        Seen {
            version: CgVersion::V1,
            mount: Some(MOUNT.into()),
            all: vec![
                cg(
                    "/system.slice/db.service",
                    Max::Value(30 << 20),
                    3,
                    30 << 20,
                ),
                cg("/user.slice/nslab/oom", Max::Value(30 << 20), 1, 30 << 20),
                cg("/demo", Max::Value(30_000_000), 1, 29_999_104),
                cg("/idle", Max::Unlimited, 0, 0),
            ],
            recorded: Recorded::default(),
            asked: Asked::Nothing,
            log: Some(vec![kill("/demo")]),
        }
    }

    /// How a test case departs from the passing machine.
    type Change = Box<dyn Fn(&mut Seen)>;

    fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
        let obs = judge(s);
        let r = report(&INFO, obs.clone());
        (r.passed, obs.problem, obs)
    }

    #[test]
    fn passes_a_30mb_cgroup_whose_hog_was_killed() {
        let (passed, problem, obs) = verdict(&machine());
        assert!(passed, "{:?}", obs.facts);
        assert_eq!(problem, None);
        assert!(
            obs.judged.contains("/sys/fs/cgroup/memory/demo"),
            "{}",
            obs.judged
        );
        assert!(obs.judged.contains("tail (PID 4242)"), "{}", obs.judged);
        assert!(
            obs.notes
                .iter()
                .any(|n| n.contains("left out 1") && n.contains("and 1 of")),
            "{:?}",
            obs.notes
        );
    }

    #[test]
    fn each_failure_names_its_hint() {
        let demo =
            |f: fn(&mut MemCgroup)| -> Change { Box::new(move |s: &mut Seen| f(&mut s.all[2])) };
        let cases: Vec<(&str, Change)> = vec![
            ("no-cgroup", Box::new(|s: &mut Seen| s.all.truncate(2))),
            (
                "no-cgroup",
                Box::new(|s: &mut Seen| s.asked = Asked::Cgroup("nope".into(), None)),
            ),
            (
                "wrong-limit",
                demo(|c| {
                    c.limit = Some(Max::Value(50 << 20));
                }),
            ),
            (
                "wrong-limit",
                demo(|c| {
                    c.limit = Some(Max::Unlimited);
                }),
            ),
            (
                "never-joined",
                demo(|c| {
                    c.kills = 0;
                    c.failcnt = 0;
                    c.peak = Some(1 << 20);
                }),
            ),
            (
                "nothing-killed",
                demo(|c| {
                    c.kills = 0;
                }),
            ),
        ];
        for (want, change) in cases {
            let mut s = machine();
            change(&mut s);
            let (passed, problem, obs) = verdict(&s);
            assert!(!passed, "{want}: {:?}", obs.facts);
            assert_eq!(problem, Some(want), "{:?}", obs.facts);
            assert!(INFO.hint(want).is_some(), "hints.md has {want}");
        }
    }

    #[test]
    fn a_kill_without_its_log_line_is_still_a_kill() {
        for log in [
            None,
            Some(vec![]),
            Some(vec![kill("/demo"), kill("/other")]),
        ] {
            let s = Seen { log, ..machine() };
            assert!(verdict(&s).0);
        }
        // An old line for an earlier cgroup at the same path is not counted as this one's.
        let mut s = machine();
        s.all[2].kills = 1;
        s.log = Some(vec![kill("/demo"), kill("/demo")]);
        assert!(verdict(&s).0);
    }

    #[test]
    fn nslabs_own_and_strangers_are_never_judged() {
        let mut s = machine();
        s.all.remove(2);
        s.recorded
            .cgroups
            .push(PathBuf::from(format!("{MOUNT}/idle")));
        let (_, problem, obs) = verdict(&s);
        assert_eq!(problem, Some("no-cgroup"));
        assert!(
            obs.notes.iter().any(|n| n.contains("left out 2")),
            "{:?}",
            obs.notes
        );
    }

    #[test]
    fn the_asked_cgroup_is_judged_even_a_strangers() {
        let mut s = machine();
        let service = s.all[0].clone();
        s.asked = Asked::Pid(99, service);
        let (passed, _, obs) = verdict(&s);
        assert!(passed);
        assert!(obs.judged.contains("db.service"), "{}", obs.judged);
        assert!(obs.notes.iter().any(|n| n.contains("PID 99")));
    }
}
