//! Lesson 1: PID namespaces.

mod check;

use crate::kernel::ns::{self, NsKind};
use crate::kernel::pidns::{self, PidNamespace};
use crate::kernel::procs::{self, ProcInfo};
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};

pub static INFO: LessonInfo = LessonInfo {
    number: 1,
    slug: "pid",
    title: "PID namespaces — who is PID 1?",
    summary: "a process becomes PID 1 of a new PID namespace; --fork and --mount-proc",
    text: include_str!("../../../lessons/01-pid/lesson.md"),
    hints: include_str!("../../../lessons/01-pid/hints.md"),
    solution: include_str!("../../../lessons/01-pid/solution.md"),
    expected_check: include_str!("../../../lessons/01-pid/expected/check.txt"),
    parent: None,
    steps: &Table::<PidLesson>::OF,
    check: run_check::<check::PidCheck>,
    needs_root: true,
    names: &[],
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
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "Your shell's namespaces",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "unshare(CLONE_NEWPID) and fork",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "ps needs its own /proc",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "When PID 1 exits",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "A shell inside",
            keyboard: true,
            run: Self::step_e,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
