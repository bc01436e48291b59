//! Lesson 1: PID namespaces.

use super::{CheckArgs, Lesson, LessonInfo, StepSpec};
use crate::checks::{Fact, Observation};
use crate::engine::Stage;
use crate::error::Problem;
use crate::kernel::ns::{self, NsKind};
use crate::kernel::pidns::{self, PidNamespace};
use crate::kernel::procs::{self, ProcInfo};
use crate::ledger::{self, Resource};
use crate::views;
use anyhow::{Context, Result};

pub static INFO: LessonInfo = LessonInfo {
    number: 1,
    slug: "pid",
    title: "PID namespaces — who is PID 1?",
    summary: "a process becomes PID 1 of a new PID namespace; --fork and --mount-proc",
    text: include_str!("../../lessons/01-pid/lesson.md"),
    hints: include_str!("../../lessons/01-pid/hints.md"),
    solution: include_str!("../../lessons/01-pid/solution.md"),
    expected_check: include_str!("../../lessons/01-pid/expected/check.txt"),
    steps: &[
        StepSpec {
            id: 'a',
            interactive: false,
        },
        StepSpec {
            id: 'b',
            interactive: false,
        },
        StepSpec {
            id: 'c',
            interactive: false,
        },
        StepSpec {
            id: 'd',
            interactive: false,
        },
        StepSpec {
            id: 'e',
            interactive: true,
        },
    ],
    make: || Box::new(PidLesson::default()),
    check,
};

/// State carried from step to step: the namespace made in step b lives until step d.
#[derive(Default)]
struct PidLesson {
    ns: Option<PidNamespace>,
    /// Inode of the namespace made in step b.
    new_pid_ns: Option<u64>,
    sleeper_inside: Option<i32>,
}

fn label(name: &str, pid: i32) -> String {
    format!("{name} (PID {pid})")
}

impl PidLesson {
    /// Steps may be started on their own (`--step c`): make what earlier steps would have.
    fn ensure_namespace(&mut self, stage: &mut Stage) -> Result<()> {
        if self.ns.is_some() {
            return Ok(());
        }
        stage.say("Making the PID namespace of step b first.");
        let (mut ns, _) = PidNamespace::create()?;
        ns.start_init()?;
        let view = ns.init_self_view()?;
        self.new_pid_ns = view.namespaces.inode(NsKind::Pid);
        self.ns = Some(ns);
        stage.syscalls();
        Ok(())
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("ls -l /proc/self/ns/");
        let me =
            procs::process(std::process::id() as i32).context("reading nslab's own /proc entry")?;
        let mine = ns::of_pid(me.pid).context("reading /proc/self/ns")?;
        stage.view(
            &format!("/proc/{}/ns (nslab itself)", me.pid),
            &views::ns::links(&mine),
        );

        let mut columns = vec![views::ns::Column {
            label: label("nslab", me.pid),
            set: &mine,
        }];
        let shell = procs::caller();
        let shell_set = shell.as_ref().and_then(|s| ns::of_pid(s.pid));
        if let (Some(s), Some(set)) = (&shell, &shell_set) {
            columns.push(views::ns::Column {
                label: label(&s.comm, s.pid),
                set,
            });
        }
        let init = ns::of_pid(1);
        if let Some(set) = &init {
            columns.push(views::ns::Column {
                label: "PID 1".into(),
                set,
            });
        }
        stage.view(
            "The same namespaces, side by side",
            &views::ns::compare(&columns),
        );

        if let (Some(s), Some(set)) = (&shell, &shell_set) {
            let same = NsKind::ALL
                .iter()
                .filter(|&&k| set.inode(k).is_some() && set.inode(k) == mine.inode(k))
                .count();
            let readable = NsKind::ALL
                .iter()
                .filter(|&&k| mine.inode(k).is_some())
                .count();
            stage.say(&format!(
                "nslab and {} (PID {}) have the same inode in {same} of {readable} rows: they share those namespaces.",
                s.comm, s.pid
            ));
        }
        match &init {
            Some(set) if set.inode(NsKind::Pid).is_none() => stage.say(
                "PID 1's links cannot be read here, even by root: this machine's first process is not an \
                 ordinary init (a container, WSL or a sandbox agent). nslab compares with its own namespaces instead.",
            ),
            Some(set) if set.inode(NsKind::Pid) == mine.inode(NsKind::Pid) => {
                stage.say("PID 1 shows the same PID namespace: you are in the host's.")
            }
            Some(_) => stage.say("PID 1 is in a different PID namespace: nslab itself runs inside one (a container?)."),
            None => {}
        }
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("sudo unshare --pid --fork sleep 1000 &\ngrep NSpid /proc/$!/status");
        let (mut ns, unshared) = PidNamespace::create()?;
        let unsharer = ns.unsharer_pid();
        stage.syscalls();
        stage.before_after(
            &format!(
                "The unsharer's links (PID {unsharer}) before and after unshare(CLONE_NEWPID)"
            ),
            &views::ns::links(&unshared.before),
            &views::ns::links(&unshared.after),
        );
        stage.say(&format!(
            "Its `pid` link did not change: PID {unsharer} stays where it was. `pid_for_children` points at a \
             namespace that has no process yet{}.",
            if unshared.after.inode(NsKind::PidForChildren).is_none() { ", so the kernel shows no link at all" } else { "" }
        ));

        let host_pid = ns.start_init()?;
        stage.syscalls();
        let inside = ns.init_self_view()?;
        let outside = procs::process(host_pid).context("the new PID 1 vanished")?;
        let after_fork = ns::of_pid(unsharer).context("the unsharer vanished")?;
        self.new_pid_ns = inside.namespaces.inode(NsKind::Pid);
        stage.view(
            "The unsharer and its first child",
            &views::ns::compare(&[
                views::ns::Column {
                    label: label("unsharer", unsharer),
                    set: &after_fork,
                },
                views::ns::Column {
                    label: format!("child (host PID {host_pid})"),
                    set: &inside.namespaces,
                },
            ]),
        );
        stage.view(
            "The child, seen from the host's /proc",
            &views::procs::table(std::slice::from_ref(&outside)),
        );
        stage.say(&format!(
            "Inside, getpid() returns {}. The host knows the same process as PID {host_pid}. \
             Its status file says `NSpid: {}`: one number per PID namespace, outermost first.",
            inside.getpid,
            outside
                .nspid
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
        self.ns = Some(ns);
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_namespace(stage)?;
        let ns = self.ns.as_mut().expect("ensured above");
        let host_pid = ns.init_host_pid().context("PID 1 is not running")?;
        stage.command("sudo unshare --pid --fork ps aux | wc -l");
        let seen: Vec<ProcInfo> = ns.ps_inside()?;
        let first = seen.iter().find(|p| p.pid == 1);
        stage.say(&format!(
            "With the host's /proc, our PID 1 sees {} processes — the whole machine. The entry numbered 1 \
             there is `{}`, the host's first process, and our own process shows up as {host_pid}, its host number.",
            seen.len(),
            first.map(|p| p.comm.as_str()).unwrap_or("?")
        ));
        let ours: Vec<ProcInfo> = seen.iter().filter(|p| p.pid == host_pid).cloned().collect();
        stage.view(
            "Our own row in what ps would print",
            &views::procs::table(&ours),
        );
        stage.command("sudo unshare --pid --fork --mount-proc ps aux");
        ns.mount_fresh_proc()?;
        stage.syscalls();
        let sleeper = ns.spawn_sleeper()?;
        self.sleeper_inside = Some(sleeper);
        stage.syscalls();
        let fresh = ns.ps_inside()?;
        stage.view(
            "ps inside, after a private mount namespace and a fresh /proc",
            &views::procs::table(&fresh),
        );
        stage.say(&format!(
            "Now {} processes: PID 1 is our own process and PID {sleeper} the child it just forked. \
             The host's /proc is untouched: the new mount lives in the child's private mount namespace.",
            fresh.len()
        ));
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_namespace(stage)?;
        if self.sleeper_inside.is_none() {
            let ns = self.ns.as_mut().expect("ensured above");
            self.sleeper_inside = Some(ns.spawn_sleeper()?);
            stage.syscalls();
        }
        let pid_ns = self
            .new_pid_ns
            .context("the new namespace's inode is unknown")?;
        let ns = self.ns.as_mut().expect("ensured above");
        let host_pid = ns.init_host_pid().context("PID 1 is not running")?;
        let before = pidns::members(pid_ns)?;
        stage.view(
            "Members of the namespace, seen from the host",
            &views::procs::table(&before),
        );
        stage.command(&format!(
            "sudo kill {host_pid}      # PID 1 of the namespace ends"
        ));
        ns.end_init()?;
        stage.syscalls();
        let after = pidns::members(pid_ns)?;
        stage.before_after(
            "Members before and after PID 1 exited",
            &views::procs::table(&before),
            &views::procs::table(&after),
        );
        stage.say(&format!(
            "PID 1 ended, and the kernel killed the other {} member(s) with it: the namespace has {} processes now.",
            before.len().saturating_sub(1),
            after.len()
        ));
        let attempt = ns.unsharer_tries_fork()?;
        stage.syscalls();
        if attempt.succeeded {
            stage.say(&format!(
                "The unsharer could still fork ({}).",
                attempt.shown
            ));
        } else {
            stage.say(&format!(
                "The unsharer's next child would go into that finished namespace, and the kernel refuses: \
                 `{}`. A shell says `fork: Cannot allocate memory`.",
                attempt.shown
            ));
        }
        if let Some(ns) = self.ns.take() {
            ns.close()?;
        }
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        if let Some(ns) = self.ns.take() {
            ns.close()?;
        }
        let shell = ["/bin/bash", "/usr/bin/bash", "/bin/sh"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .context("no shell found at /bin/bash or /bin/sh")?;
        stage.command(&format!("sudo unshare --pid --fork --mount-proc {shell}"));
        stage.say("Your shell is starting as PID 1. Type `exit` to come back to the lesson.");
        let code = pidns::run_shell(shell, "[nslab pid-ns] \\w # ")?;
        crate::kernel::sys::clear_interrupt();
        stage.syscalls();
        stage.say(&format!(
            "The shell exited with status {code}; its namespace ended with it."
        ));
        Ok(())
    }
}

impl Lesson for PidLesson {
    fn run_step(&mut self, id: char, stage: &mut Stage) -> Result<()> {
        match id {
            'a' => self.step_a(stage),
            'b' => self.step_b(stage),
            'c' => self.step_c(stage),
            'd' => self.step_d(stage),
            'e' => self.step_e(stage),
            other => Err(super::no_such_step(&INFO, other)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The check.

const FOUND: &str = "PID namespace made by unshare";
const OWN: &str = "PID namespace";
const INIT: &str = "PID 1 inside";
const PROC: &str = "/proc inside";

/// A namespace someone entered: its PID 1 (host view) and who started it.
struct Entered<'a> {
    init: &'a ProcInfo,
    creator: Option<&'a ProcInfo>,
    pid_ns: u64,
}

/// A process that called unshare(CLONE_NEWPID) but stayed outside (no --fork).
struct Outside<'a> {
    shell: &'a ProcInfo,
    /// The namespace its children would enter; `None` while it has no PID 1 yet.
    pending_ns: Option<u64>,
}

fn nslab_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = ledger::all_recorded()
        .into_iter()
        .filter_map(|r| match r {
            Resource::Process { pid, .. } => Some(pid),
            _ => None,
        })
        .collect();
    pids.push(std::process::id() as i32);
    pids
}

fn check(args: &CheckArgs) -> Result<Observation> {
    let me = std::process::id() as i32;
    let host_ns = ns::link(me, NsKind::Pid)
        .inode
        .context("reading nslab's own /proc/self/ns/pid")?;
    let table = procs::table().context("reading the process table")?;
    let ours = nslab_pids();
    let by_pid = |pid: i32| table.iter().find(|p| p.pid == pid);
    // nslab's own namespaces (a lesson running in another terminal) are not the learner's.
    let is_ours = |p: &ProcInfo| {
        procs::ancestors(&table, p.pid)
            .iter()
            .any(|a| ours.contains(&a.pid))
    };

    let entered_all: Vec<Entered> = table
        .iter()
        .filter(|p| {
            !p.is_zombie()
                && p.pid_ns.is_some()
                && p.pid_ns != Some(host_ns)
                && p.innermost_pid() == 1
        })
        .filter(|p| !is_ours(p))
        .map(|p| Entered {
            init: p,
            creator: by_pid(p.ppid),
            pid_ns: p.pid_ns.unwrap_or(0),
        })
        .collect();
    let outside_all: Vec<Outside> = table
        .iter()
        // `unshare --pid --fork` itself stays outside with its children's namespace set: that is
        // the correct way, not the mistake looked for here.
        .filter(|p| !p.is_zombie() && !p.cmdline.is_empty() && p.comm != "unshare")
        .filter(|p| p.pid_ns == Some(host_ns) && !is_ours(p))
        .filter_map(|p| {
            let l = ns::link(p.pid, NsKind::PidForChildren);
            match (l.inode, l.unreadable.as_deref()) {
                (Some(i), _) if i != host_ns => Some(Outside {
                    shell: p,
                    pending_ns: Some(i),
                }),
                (None, Some("no such namespace")) => Some(Outside {
                    shell: p,
                    pending_ns: None,
                }),
                _ => None,
            }
        })
        .collect();

    if let Some(pid) = args.pid {
        let p = by_pid(pid).ok_or_else(|| {
            Problem::usage(
                format!("there is no process with PID {pid}"),
                "give the host PID of a process inside your namespace (ps -ef --forest)",
            )
        })?;
        if let Some(ns_inode) = p.pid_ns.filter(|&n| n != host_ns) {
            return Ok(match entered_all.iter().find(|e| e.pid_ns == ns_inode) {
                Some(e) => judge_entered(
                    e,
                    &table,
                    vec![format!(
                        "judging the namespace of PID {pid}, as asked with --pid"
                    )],
                ),
                None => nothing_found(vec![format!(
                    "PID {pid} is in PID namespace {ns_inode}, which has no PID 1 visible"
                )]),
            });
        }
        if let Some(o) = outside_all.iter().find(|o| o.shell.pid == pid) {
            return Ok(judge_outside(o, &table, vec![]));
        }
        let mut obs = nothing_found(vec![]);
        obs.facts[0].value = format!("PID {pid} is in the host's PID namespace");
        obs.judged = format!("PID {pid} ({}), in the host's PID namespace", p.comm);
        obs.problem = Some("host-namespace");
        return Ok(obs);
    }

    let learner: Vec<&Entered> = entered_all
        .iter()
        .filter(|e| e.creator.is_some_and(|c| c.comm == "unshare"))
        .collect();
    let strangers = entered_all.len() - learner.len();
    let mut notes = Vec::new();
    notes.push(
        "nslab judges a PID namespace whose first process was started by `unshare` (or a shell that ran \
         unshare without --fork); containers and services are left alone; --pid HOSTPID picks one"
            .to_string(),
    );
    if strangers > 0 {
        notes.push(format!(
            "ignored {strangers} other PID namespace(s) not made by unshare (containers, services)"
        ));
    }
    if let Some(newest) = learner.iter().max_by_key(|e| e.init.start_time) {
        if learner.len() > 1 {
            notes.push(format!(
                "{} namespaces made by unshare are running; judging the newest",
                learner.len()
            ));
        }
        if !outside_all.is_empty() {
            notes.push(format!(
                "{} shell(s) ran unshare --pid without --fork; they are not judged",
                outside_all.len()
            ));
        }
        return Ok(judge_entered(newest, &table, notes));
    }
    if let Some(newest) = outside_all.iter().max_by_key(|o| o.shell.start_time) {
        return Ok(judge_outside(newest, &table, notes));
    }
    Ok(nothing_found(notes))
}

fn nothing_found(notes: Vec<String>) -> Observation {
    Observation {
        judged: "no PID namespace made by unshare is running".into(),
        facts: vec![
            Fact::new(FOUND, "not found"),
            Fact::new(OWN, "-"),
            Fact::new(INIT, "-"),
            Fact::new(PROC, "-"),
        ],
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -B1 -A2 unshare".into(),
            "sudo lsns -t pid".into(),
        ],
        notes,
    }
}

fn judge_entered(e: &Entered, table: &[ProcInfo], notes: Vec<String>) -> Observation {
    let init = e.init;
    let mut problem = None;
    let init_fact = if procs::is_shell(&init.comm) {
        "a shell, running".to_string()
    } else {
        problem = Some("not-a-shell");
        format!("`{}`, not a shell", init.comm)
    };
    let proc_fact = match pidns::pid1_start_time_seen_by(init.pid) {
        Some(t) if t == init.start_time => "mounted for this namespace".to_string(),
        Some(_) => {
            problem = problem.or(Some("no-mount-proc"));
            "the host's (ps inside lists every host process)".to_string()
        }
        None => {
            problem = problem.or(Some("no-mount-proc"));
            "unreadable from outside (no /proc/1 there)".to_string()
        }
    };
    let members = table.iter().filter(|p| p.pid_ns == Some(e.pid_ns)).count();
    let creator = match e.creator {
        Some(c) => format!("made by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let nspid = init
        .nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    Observation {
        judged: format!(
            "PID namespace pid:[{}] {creator}; its PID 1 is `{}` = host PID {} (NSpid: {nspid}); {members} process(es) inside",
            e.pid_ns, init.comm, init.pid
        ),
        facts: vec![
            Fact::new(FOUND, "found"),
            Fact::new(OWN, "its own, not the host's"),
            Fact::new(INIT, init_fact),
            Fact::new(PROC, proc_fact),
        ],
        problem,
        verify: vec![
            format!("sudo readlink /proc/{}/ns/pid /proc/$$/ns/pid", init.pid),
            format!("grep NSpid /proc/{}/status", init.pid),
            format!("sudo nsenter -t {} -p -m ps aux", init.pid),
        ],
        notes,
    }
}

fn judge_outside(o: &Outside, table: &[ProcInfo], notes: Vec<String>) -> Observation {
    let s = o.shell;
    let (init_fact, problem) = match o.pending_ns {
        None => ("none yet".to_string(), "no-fork"),
        Some(ns_inode) => match table
            .iter()
            .find(|p| p.pid_ns == Some(ns_inode) && p.innermost_pid() == 1)
        {
            Some(p) => (format!("`{}`, a child of your shell", p.comm), "no-fork"),
            None => (
                "gone, the namespace can start no process".to_string(),
                "pid1-gone",
            ),
        },
    };
    Observation {
        judged: format!(
            "`{}` (host PID {}) called unshare(CLONE_NEWPID) but stayed in the host's PID namespace{}",
            s.cmdline,
            s.pid,
            o.pending_ns.map(|n| format!("; its children would go to pid:[{n}]")).unwrap_or_default()
        ),
        facts: vec![
            Fact::new(FOUND, "made, but not entered (unshare ran without --fork)"),
            Fact::new(OWN, "the shell is still in the host's"),
            Fact::new(INIT, init_fact),
            Fact::new(PROC, "-"),
        ],
        problem: Some(problem),
        verify: vec![
            format!("sudo ls -l /proc/{}/ns/pid /proc/{}/ns/pid_for_children", s.pid, s.pid),
            format!("grep NSpid /proc/{}/status", s.pid),
        ],
        notes,
    }
}
