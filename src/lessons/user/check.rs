//! Check 8: a shell of the learner's in a user namespace of its own that maps root to them,
//! with its own PID namespace and /proc. Works with or without sudo: a process's status and
//! uid_map are readable by anyone, and the learner may read their own namespaces' links.

use crate::checks::whose::{self, Recorded, Whose};
use crate::kernel::ids::{self, SubRange};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::pidns;
use crate::kernel::procs::{self, ProcInfo};
use crate::kernel::userns::{self, MapFile};
use crate::lesson::{Check, CheckArgs, Fact, Observation};
use anyhow::{Context, Result};

pub struct UserCheck;

/// A shell seen in a user namespace other than nslab's.
#[derive(Clone, Debug)]
pub struct Shell {
    pub pid: i32,
    /// Its user namespace's inode, when its link is readable (not, without root, for root's).
    pub user_ns: Option<u64>,
    /// Its uid_map as nslab's user namespace reads it.
    pub uid_map: String,
    /// The start time of the PID 1 its /proc shows (`None`: unreadable).
    pub proc_pid1: Option<u64>,
}

pub struct Seen {
    pub table: Vec<ProcInfo>,
    pub recorded: Recorded,
    /// Every shell in another user namespace than nslab's.
    pub shells: Vec<Shell>,
    /// Who the learner is (SUDO_UID under sudo, else the caller); `None` for root alone.
    pub learner: Option<u32>,
    /// The learner's subordinate UID ranges (/etc/subuid).
    pub subuids: Vec<SubRange>,
    /// `--pid`.
    pub asked: Option<i32>,
}

const USERNS: &str = "user namespace";
const MAP: &str = "uid_map";
const OWNER: &str = "owner on the host";
const PIDNS: &str = "PID namespace";
const PROC: &str = "/proc inside";

impl Check for UserCheck {
    type Seen = Seen;

    fn observe(args: &CheckArgs) -> Result<Seen> {
        let me = std::process::id() as i32;
        let own_ns = ns::link(me, NsKind::User)
            .inode
            .context("reading nslab's own /proc/self/ns/user")?;
        let own_map = userns::map_of(me, MapFile::UidMap).context("reading /proc/self/uid_map")?;
        let table = procs::table().context("reading the process table")?;
        crate::checks::require_listed(
            &table,
            args.pid,
            "give the host PID of your shell inside the namespace (ps -o pid,user,cmd -C bash)",
        )?;
        let shells = table
            .iter()
            .filter(|p| !p.is_zombie() && (procs::is_shell(&p.comm) || args.pid == Some(p.pid)))
            .filter_map(|p| {
                let user_ns = ns::link(p.pid, NsKind::User).inode;
                let uid_map = userns::map_of(p.pid, MapFile::UidMap)?;
                // An unreadable link (root's shell, seen without root): its map tells.
                let other = match user_ns {
                    Some(n) => n != own_ns,
                    None => uid_map != own_map,
                };
                other.then(|| Shell {
                    pid: p.pid,
                    user_ns,
                    uid_map,
                    proc_pid1: pidns::pid1_start_time_seen_by(p.pid),
                })
            })
            .collect();
        let who = userns::learner();
        Ok(Seen {
            table,
            recorded: Recorded::read(),
            shells,
            learner: who.as_ref().map(|w| w.uid),
            subuids: who
                .as_ref()
                .map(|w| userns::subordinate_ranges(w).0)
                .unwrap_or_default(),
            asked: args.pid,
        })
    }

    fn judge(s: &Seen) -> Observation {
        judge(s)
    }
}

fn judge(s: &Seen) -> Observation {
    let info = |pid: i32| s.table.iter().find(|p| p.pid == pid);
    let mut notes = vec![
        "nslab judges a shell in a user namespace of its own, yours (or root's, if started with sudo); \
         containers, services and other users' are left alone; --pid HOSTPID picks one"
            .to_string(),
    ];
    if let Some(pid) = s.asked {
        return match s.shells.iter().find(|sh| sh.pid == pid) {
            Some(sh) => judge_shell(
                sh,
                s,
                vec![format!("judging PID {pid}, as asked with --pid")],
            ),
            None => {
                let mut obs = nothing_found(notes);
                obs.judged = format!("PID {pid} is in nslab's own (the host's) user namespace");
                obs
            }
        };
    }
    let candidates: Vec<(&Shell, &ProcInfo)> = s
        .shells
        .iter()
        .filter_map(|sh| Some((sh, info(sh.pid)?)))
        .filter(|(sh, p)| {
            whose::rootless_shell(&s.table, sh.pid, &s.recorded, p.uid, s.learner) == Whose::Learner
        })
        .collect();
    let ignored = s.shells.len() - candidates.len();
    if ignored > 0 {
        notes.push(format!(
            "ignored {ignored} shell(s) in user namespaces that are not yours (containers, sandboxes, other users')"
        ));
    }
    // Rank: the learner's own before root's; made by unshare first; then the newest.
    let rank = |(sh, p): &(&Shell, &ProcInfo)| {
        let by_unshare = info(p.ppid).is_some_and(|c| c.comm == "unshare");
        (p.uid != 0, by_unshare, p.start_time, sh.pid)
    };
    let Some(best) = candidates.iter().max_by_key(|c| rank(c)) else {
        return nothing_found(notes);
    };
    if candidates.len() > 1 {
        notes.push(format!(
            "{} of your shells are in user namespaces of their own; judging the newest started by unshare",
            candidates.len()
        ));
    }
    judge_shell(best.0, s, notes)
}

fn nothing_found(notes: Vec<String>) -> Observation {
    Observation {
        judged: "no shell of yours is in a user namespace of its own".into(),
        facts: vec![
            Fact::new(USERNS, "not found"),
            Fact::new(MAP, "-"),
            Fact::new(OWNER, "-"),
            Fact::new(PIDNS, "-"),
            Fact::new(PROC, "-"),
        ],
        problem: Some("nothing-found"),
        verify: vec![
            "ps -o pid,user,ppid,cmd -C bash".into(),
            "lsns -t user".into(),
        ],
        notes,
    }
}

fn judge_shell(sh: &Shell, s: &Seen, notes: Vec<String>) -> Observation {
    let Some(p) = s.table.iter().find(|p| p.pid == sh.pid) else {
        return nothing_found(notes);
    };
    let mut problems: Vec<&'static str> = Vec::new();
    let owner = if p.uid == 0 {
        problems.push("started-with-sudo");
        "root (it was started with sudo)".to_string()
    } else {
        "you, not root".to_string()
    };
    let map = ids::parse_id_map(&sh.uid_map).unwrap_or_default();
    let yours = |id: u32| {
        id != 0
            && (id == p.uid || Some(id) == s.learner || s.subuids.iter().any(|r| r.contains(id)))
    };
    let map_fact = match ids::map_to_outside(&map, 0) {
        Some(id) if yours(id) => "maps root to you".to_string(),
        Some(0) => {
            problems.push("started-with-sudo");
            "maps root to the host's root".to_string()
        }
        Some(id) => {
            problems.push("no-map");
            format!("maps root to UID {id}, not yours")
        }
        None if map.is_empty() => {
            problems.push("no-map");
            "empty: root inside is nobody".to_string()
        }
        None => {
            problems.push("no-map");
            "does not map root".to_string()
        }
    };
    let own_pidns = p.nspid.len() > 1;
    let pid_fact = if own_pidns {
        "its own, not the host's"
    } else {
        problems.push("no-pid-namespace");
        "the host's"
    };
    let init = p.pid_ns.and_then(|n| {
        s.table
            .iter()
            .find(|q| q.pid_ns == Some(n) && q.innermost_pid() == 1)
    });
    let proc_fact = match (own_pidns, init, sh.proc_pid1) {
        (false, _, _) => "-".to_string(),
        (true, Some(i), Some(t)) if t == i.start_time => "mounted for this namespace".to_string(),
        (true, _, Some(_)) => {
            problems.push("no-mount-proc");
            "the host's (ps inside lists every host process)".to_string()
        }
        (true, _, None) => {
            problems.push("no-mount-proc");
            "unreadable from outside".to_string()
        }
    };
    // The first failure in the order a learner meets them when fixing their command.
    let order = [
        "started-with-sudo",
        "no-map",
        "no-pid-namespace",
        "no-mount-proc",
    ];
    let problem = order.into_iter().find(|o| problems.contains(o));
    let creator = match s.table.iter().find(|q| q.pid == p.ppid) {
        Some(c) => format!("made by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let userns = sh
        .user_ns
        .map(|n| format!("user:[{n}]"))
        .unwrap_or_else(|| "a user namespace (link unreadable)".into());
    Observation {
        judged: format!(
            "`{}` = host PID {} (UID {} on the host), in {userns}, {creator}; uid_map: {}",
            p.comm,
            p.pid,
            p.uid,
            one_line(&sh.uid_map)
        ),
        facts: vec![
            Fact::new(USERNS, "its own"),
            Fact::new(MAP, map_fact),
            Fact::new(OWNER, owner),
            Fact::new(PIDNS, pid_fact),
            Fact::new(PROC, proc_fact),
        ],
        problem,
        verify: vec![
            format!("cat /proc/{}/uid_map /proc/{}/gid_map", p.pid, p.pid),
            format!("grep -E 'Uid|NSpid|CapEff' /proc/{}/status", p.pid),
            format!("ls -l /proc/{}/ns/user /proc/$$/ns/user", p.pid),
            format!(
                "nsenter -t {} -U -p -m --preserve-credentials ps aux",
                p.pid
            ),
        ],
        notes,
    }
}

fn one_line(map: &str) -> String {
    let lines: Vec<String> = map
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "(empty)".into()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report;
    use crate::lessons::user::INFO;

    const HOST: u64 = 4026531836;
    const NEW: u64 = 4026532600;
    const LEARNER: u32 = 1000;

    fn p(pid: i32, ppid: i32, comm: &str, uid: u32, ns: u64, nspid: &[i32]) -> ProcInfo {
        ProcInfo {
            uid,
            start_time: 1000 + pid as u64,
            nspid: nspid.to_vec(),
            pid_ns: Some(ns),
            ..ProcInfo::fixture(pid, ppid, comm)
        }
    }

    /// A terminal's shell, `unshare --user --map-root-user --pid --fork --mount-proc bash`
    /// as the learner, and nslab checking.
    fn machine() -> Seen {
        Seen {
            table: vec![
                p(1, 0, "init", 0, HOST, &[1]),
                p(100, 1, "bash", LEARNER, HOST, &[100]),
                p(102, 100, "unshare", LEARNER, HOST, &[102]),
                p(103, 102, "bash", LEARNER, NEW, &[103, 1]),
                p(200, 100, "nslab", LEARNER, HOST, &[200]),
            ],
            recorded: Recorded {
                pids: vec![200],
                ..Recorded::default()
            },
            shells: vec![Shell {
                pid: 103,
                user_ns: Some(4026532599),
                uid_map: "         0       1000          1\n".into(),
                proc_pid1: Some(1103),
            }],
            learner: Some(LEARNER),
            subuids: vec![],
            asked: None,
        }
    }

    type Change = Box<dyn Fn(&mut Seen)>;

    fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
        let obs = judge(s);
        let r = report(&INFO, obs.clone());
        (r.passed, obs.problem, obs)
    }

    #[test]
    fn passes_a_rootless_shell_with_its_own_pid_namespace_and_proc() {
        let (passed, problem, obs) = verdict(&machine());
        assert!(passed, "{:?}", obs.facts);
        assert_eq!(problem, None);
        assert!(obs.judged.contains("host PID 103"), "{}", obs.judged);
        // Checked under sudo by root, or by root with nobody behind it: the same.
        for learner in [Some(LEARNER), None] {
            let mut s = machine();
            s.learner = learner;
            assert!(verdict(&s).0);
        }
    }

    #[test]
    fn a_subordinate_range_of_the_learners_counts_as_theirs() {
        let mut s = machine();
        s.shells[0].uid_map = "0 100000 65536\n".into();
        assert_eq!(verdict(&s).1, Some("no-map"), "not a range of theirs");
        s.subuids = vec![SubRange {
            start: 100000,
            count: 65536,
        }];
        assert!(verdict(&s).0);
    }

    #[test]
    fn each_failure_names_its_hint() {
        let cases: Vec<(&str, Change)> = vec![
            ("nothing-found", Box::new(|s: &mut Seen| s.shells.clear())),
            (
                // `sudo unshare --user --map-root-user …`: root on the host, mapped to root.
                "started-with-sudo",
                Box::new(|s: &mut Seen| {
                    s.table[2].uid = 0;
                    s.table[3].uid = 0;
                    s.shells[0].uid_map = "0 0 1\n".into();
                }),
            ),
            (
                "no-map",
                Box::new(|s: &mut Seen| s.shells[0].uid_map = String::new()),
            ),
            (
                // --map-current-user: the learner is themselves inside, not root.
                "no-map",
                Box::new(|s: &mut Seen| s.shells[0].uid_map = "1000 1000 1\n".into()),
            ),
            (
                "no-pid-namespace",
                Box::new(|s: &mut Seen| {
                    s.table[3] = p(103, 102, "bash", LEARNER, HOST, &[103]);
                    s.shells[0].proc_pid1 = Some(1);
                }),
            ),
            (
                "no-mount-proc",
                Box::new(|s: &mut Seen| s.shells[0].proc_pid1 = Some(1)),
            ),
            (
                "no-mount-proc",
                Box::new(|s: &mut Seen| s.shells[0].proc_pid1 = None),
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
    fn another_users_and_nslabs_shells_are_not_the_learners() {
        let mut s = machine();
        for q in s.table.iter_mut().filter(|q| q.pid >= 102 && q.pid < 200) {
            q.uid = 1001;
        }
        let obs = judge(&s);
        assert_eq!(obs.problem, Some("nothing-found"));
        assert!(
            obs.notes.iter().any(|n| n.contains("ignored 1")),
            "{:?}",
            obs.notes
        );
        let mut s = machine();
        s.recorded.pids.push(102);
        assert_eq!(judge(&s).problem, Some("nothing-found"));
    }

    #[test]
    fn the_learners_own_shell_is_judged_before_one_started_with_sudo() {
        let mut s = machine();
        s.table.push(p(110, 100, "unshare", 0, HOST, &[110]));
        s.table.push(p(111, 110, "bash", 0, NEW + 1, &[111, 1]));
        s.shells.push(Shell {
            pid: 111,
            user_ns: None,
            uid_map: "0 0 1\n".into(),
            proc_pid1: None,
        });
        let (passed, _, obs) = verdict(&s);
        assert!(passed, "{}", obs.judged);
        s.shells.remove(0);
        assert_eq!(verdict(&s).1, Some("started-with-sudo"));
    }

    #[test]
    fn the_facts_are_those_of_the_expected_snapshot() {
        crate::lessons::assert_hints_and_facts(
            &INFO,
            &[
                "nothing-found",
                "started-with-sudo",
                "no-map",
                "no-pid-namespace",
                "no-mount-proc",
            ],
            &[USERNS, MAP, OWNER, PIDNS, PROC],
        );
    }
}
