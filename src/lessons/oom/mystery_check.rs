//! Check 3b: the mystery's app lives again because the learner raised the limit of the
//! cgroup above it, judged on the live system while `nslab lesson 3b` runs.

use super::mystery::{show_max, APP, APP_LIMIT, APP_NEEDS, PARENT, PARENT_LIMIT, ROOM};
use super::read_count as count;
use crate::checks::whose::Recorded;
use crate::kernel::cgroup::concepts::human_bytes;
use crate::kernel::cgroup::{self, CgVersion, Cgroup, Concept, Max, Reading};
use crate::kernel::sys;
use crate::lesson::instance::is_named;
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct MysteryCheck;

/// The mystery's two cgroups, watched for a while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// `…/nslab/mystery` and `…/nslab/mystery/app`.
    pub parent_dir: PathBuf,
    pub app_dir: PathBuf,
    pub version: CgVersion,
    pub parent_limit: Option<Max>,
    pub app_limit: Option<Max>,
    /// The last look during the watch: processes in the app's cgroup and its usage.
    pub last_look: (usize, u64),
    /// The app cgroup's oom_kill before and after the watch.
    pub kills: (u64, u64),
    /// The processes in the app's cgroup after the watch.
    pub procs_after: usize,
}

/// `None`: no running `nslab lesson 3b` recorded the mystery's cgroups.
pub type Seen = Option<Watched>;

pub(super) const F_RUNNING: &str = "mystery";
pub(super) const F_PARENT: &str = "limit of the cgroup above the app (mystery)";
pub(super) const F_APP: &str = "app";

/// How long the check watches: the app climbs to its size in about half of one second.
const WATCH: Duration = Duration::from_secs(2);

fn limit_of(cg: &Cgroup) -> Option<Max> {
    match cg.read(Concept::MemoryLimit) {
        Ok(Reading::Limit(m)) => Some(m),
        _ => None,
    }
}

/// The mystery's cgroups, above the app and the app's: recorded by a live nslab run and
/// still there.
fn find_mystery(recorded: &Recorded) -> Option<(Cgroup, Cgroup)> {
    recorded.cgroups.iter().find_map(|path| {
        let is_mystery = path
            .file_name()
            .is_some_and(|n| is_named(&n.to_string_lossy(), PARENT))
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "nslab");
        if !is_mystery {
            return None;
        }
        Some((
            Cgroup::at_dir(path, &["memory"])?,
            Cgroup::at_dir(&path.join(APP), &["memory"])?,
        ))
    })
}

fn mem_dir(cg: &Cgroup) -> (PathBuf, CgVersion) {
    cg.dir_for("memory")
        .map(|d| (d.path.clone(), d.version))
        .unwrap_or((PathBuf::new(), CgVersion::V1))
}

impl Check for MysteryCheck {
    type Seen = Seen;

    fn observe(_args: &CheckArgs) -> Result<Seen> {
        let Some((parent, app)) = find_mystery(&Recorded::read()) else {
            return Ok(None);
        };
        let (parent_dir, _) = mem_dir(&parent);
        let (app_dir, version) = mem_dir(&app);
        let kills_before = count(&app, Concept::OomKills);
        let mut last_look = (0, 0);
        let until = Instant::now() + WATCH;
        while Instant::now() < until {
            let procs = cgroup::read_procs(&app_dir).unwrap_or_default();
            last_look = (procs.len(), count(&app, Concept::MemoryUsage));
            sys::sleep(Duration::from_millis(200))?;
        }
        let kills_after = count(&app, Concept::OomKills);
        let procs_after = cgroup::read_procs(&app_dir).unwrap_or_default().len();
        Ok(Some(Watched {
            parent_dir,
            app_dir,
            version,
            parent_limit: limit_of(&parent),
            app_limit: limit_of(&app),
            last_look,
            kills: (kills_before, kills_after),
            procs_after,
        }))
    }

    fn judge(s: &Seen) -> Observation {
        match s {
            None => not_running(),
            Some(w) => judge(w),
        }
    }
}

fn not_running() -> Observation {
    Observation {
        judged: "no `nslab/mystery` cgroup of a running `nslab lesson 3b`".into(),
        facts: vec![
            Fact::new(F_RUNNING, "not running"),
            Fact::new(F_PARENT, "-"),
            Fact::new(F_APP, "-"),
        ],
        problem: Some("3b-start"),
        verify: vec!["find /sys/fs/cgroup -type d -name mystery".into()],
        notes: Vec::new(),
    }
}

fn judge(w: &Watched) -> Observation {
    let (parent_dir, app_dir) = (&w.parent_dir, &w.app_dir);
    let version = w.version;
    let limit_file = Concept::MemoryLimit.files(version)[0].file;
    let failcnt = Concept::MemoryFailcnt.file_label(version);
    let mut notes = Vec::new();

    // Alive: a process in the app's cgroup holding what it needs, and no new kill while
    // the check watched.
    let holding = w.last_look.0 > 0 && w.last_look.1 >= APP_NEEDS;
    let killed_meanwhile = w.kills.1 > w.kills.0;
    let no_procs = w.procs_after == 0;
    let alive = holding && !killed_meanwhile && !no_procs;

    let parent_limit = w.parent_limit;
    let enough = match parent_limit {
        Some(Max::Unlimited) => true,
        Some(Max::Value(n)) => n >= APP_NEEDS + ROOM,
        None => false,
    };
    let raised = match parent_limit {
        Some(Max::Value(n)) => n > PARENT_LIMIT,
        Some(Max::Unlimited) => true,
        None => false,
    };
    let app_limit_changed = w.app_limit != Some(Max::Value(APP_LIMIT));
    if app_limit_changed {
        notes.push(format!(
            "the app's own limit is {} now (nslab set {})",
            show_max(w.app_limit),
            human_bytes(APP_LIMIT)
        ));
    }
    // A limit a little lower than ours may still let the app live: then it was enough.
    let enough = enough || (raised && alive);
    let parent_value = if enough {
        "raised above what the app needs"
    } else if raised {
        "raised, still below what the app needs"
    } else {
        "unchanged, below what the app needs"
    };
    let app_value = if alive {
        format!("alive, holding the {} MiB it needs", APP_NEEDS >> 20)
    } else if no_procs {
        "dead, waiting for its restart".to_string()
    } else if killed_meanwhile {
        "killed again while the check watched".to_string()
    } else {
        "alive, not yet holding all it needs".to_string()
    };
    let problem = if alive && enough {
        None
    } else if !raised && app_limit_changed {
        Some("3b-own-limit")
    } else if !raised {
        Some("3b-look")
    } else if !enough {
        Some("3b-higher")
    } else {
        Some("3b-wait")
    };
    Observation {
        judged: format!(
            "{} (limit {}) and the app's cgroup {} inside it, made by `nslab lesson 3b`",
            parent_dir.display(),
            show_max(parent_limit),
            app_dir.display()
        ),
        facts: vec![
            Fact::new(F_RUNNING, "running"),
            Fact::new(F_PARENT, parent_value),
            Fact::new(F_APP, app_value),
        ],
        problem,
        verify: vec![
            format!(
                "cat {d}/{limit_file} {d}/{APP}/{limit_file}",
                d = parent_dir.display()
            ),
            format!("# {failcnt}, above the app and in it:"),
            match version {
                CgVersion::V1 => format!(
                    "cat {d}/memory.failcnt {d}/{APP}/memory.failcnt",
                    d = parent_dir.display()
                ),
                CgVersion::V2 => format!(
                    "grep max {d}/memory.events.local {d}/{APP}/memory.events.local",
                    d = parent_dir.display()
                ),
            },
            "sudo dmesg | grep oom-kill | tail -1".into(),
        ],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::lessons::oom::mystery::BONUS;

    const DIR: &str = "/sys/fs/cgroup/memory/user.slice/nslab/mystery";

    /// The learner raised the parent's limit to 100 MiB; the app holds its 48 MiB.
    fn fixed() -> Watched {
        Watched {
            parent_dir: DIR.into(),
            app_dir: format!("{DIR}/app").into(),
            version: CgVersion::V1,
            parent_limit: Some(Max::Value(100 << 20)),
            app_limit: Some(Max::Value(APP_LIMIT)),
            last_look: (1, APP_NEEDS + (1 << 20)),
            kills: (4, 4),
            procs_after: 1,
        }
    }

    fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
        let obs = MysteryCheck::judge(s);
        (report(&BONUS, obs.clone()).passed, obs.problem, obs)
    }

    #[test]
    fn passes_a_raised_parent_limit_and_a_living_app() {
        let (passed, problem, obs) = verdict(&Some(fixed()));
        assert!(passed, "{:?}", obs.facts);
        assert_eq!(problem, None);
        assert!(
            obs.judged.starts_with(DIR) && obs.judged.contains("app"),
            "{}",
            obs.judged
        );
        // No limit at all above the app is enough too.
        let w = Watched {
            parent_limit: Some(Max::Unlimited),
            ..fixed()
        };
        assert!(verdict(&Some(w)).0);
    }

    #[test]
    fn each_failure_names_its_hint() {
        let dying = |w: Watched| Watched {
            last_look: (1, 20 << 20),
            kills: (4, 5),
            ..w
        };
        let cases: Vec<(&str, Seen, &str)> = vec![
            ("3b-start", None, "mystery: not running"),
            (
                "3b-look",
                Some(dying(Watched {
                    parent_limit: Some(Max::Value(PARENT_LIMIT)),
                    ..fixed()
                })),
                "unchanged, below what the app needs",
            ),
            (
                "3b-own-limit",
                Some(dying(Watched {
                    parent_limit: Some(Max::Value(PARENT_LIMIT)),
                    app_limit: Some(Max::Value(512 << 20)),
                    ..fixed()
                })),
                "unchanged, below what the app needs",
            ),
            (
                "3b-higher",
                Some(dying(Watched {
                    parent_limit: Some(Max::Value(40 << 20)),
                    ..fixed()
                })),
                "raised, still below what the app needs",
            ),
            (
                // Raised enough, the app not restarted yet.
                "3b-wait",
                Some(Watched {
                    last_look: (0, 0),
                    procs_after: 0,
                    ..fixed()
                }),
                "app: dead, waiting for its restart",
            ),
            (
                "3b-wait",
                Some(Watched {
                    last_look: (1, 10 << 20),
                    ..fixed()
                }),
                "app: alive, not yet holding all it needs",
            ),
        ];
        for (want, s, line) in cases {
            let (passed, problem, obs) = verdict(&s);
            assert!(!passed, "{want}");
            assert_eq!(problem, Some(want), "{:?}", obs.facts);
            let facts = crate::checks::render_facts(&obs.facts);
            assert!(facts.contains(line), "{want}: {facts}");
            assert!(BONUS.hint(want).is_some(), "hints.md has {want}");
        }
    }

    #[test]
    fn a_kill_while_watching_is_said() {
        let w = Watched {
            kills: (4, 5),
            parent_limit: Some(Max::Value(40 << 20)),
            ..fixed()
        };
        let (_, problem, obs) = verdict(&Some(w));
        assert_eq!(problem, Some("3b-higher"));
        assert!(crate::checks::render_facts(&obs.facts)
            .contains("killed again while the check watched"));
    }
}
