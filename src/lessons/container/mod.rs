//! Lesson 5: a container from its parts, and the check of the hand-built one.

pub mod net;

use crate::error::Problem;
use crate::kernel::cgroup::{CgVersion, Cgroup, Concept, Layout, Max, NslabCgroup, Reading};
use crate::kernel::container::{self, Container, RootMode, Spec};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs::{self, ProcInfo};
use crate::kernel::rootfs::Rootfs;
use crate::kernel::{pidns, sys};
use crate::ledger::{self, Resource};
use crate::lesson::{CheckArgs, Fact, Lesson, LessonInfo, Observation, Stage, Step, Table};
use crate::runtime::{self, Limits, CPU_PERIOD_US};
use crate::views;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

pub static INFO: LessonInfo = INFO_FIELDS;

/// INFO as a constant, so bonus 5b's check can take its texts (`..INFO_FIELDS`).
const INFO_FIELDS: LessonInfo = LessonInfo {
    number: 5,
    slug: "container",
    title: "A container from its parts",
    summary: "namespaces + a root filesystem + pivot_root + /proc + hostname + cgroup limits = a container",
    text: include_str!("../../../lessons/05-container/lesson.md"),
    hints: include_str!("../../../lessons/05-container/hints.md"),
    solution: include_str!("../../../lessons/05-container/solution.md"),
    expected_check: include_str!("../../../lessons/05-container/expected/check.txt"),
    parent: None,
    steps: &Table::<ContainerLesson>::OF,
    check,
};

/// The hostname the lesson's containers get.
const HOSTNAME: &str = "nslab-box";
/// Step d's pids ceiling: small, so the fork bomb hits it at once.
const BOMB_PIDS: u64 = 20;

/// State across steps. Fields drop in order: the container before the root it runs in.
#[derive(Default)]
struct ContainerLesson {
    running: Option<Container>,
    rootfs: Option<Rootfs>,
}

fn sleeper() -> Vec<String> {
    vec!["sleep".into(), "1000".into()]
}

impl ContainerLesson {
    /// Steps may start on their own (`--step c`): build what step a would have.
    fn ensure_rootfs(&mut self, stage: &mut Stage) -> Result<&Path> {
        if self.rootfs.is_none() {
            stage.say("Building the root filesystem of step a first.");
            self.rootfs = Some(Rootfs::build()?);
        }
        Ok(&self.rootfs.as_ref().expect("built above").path)
    }

    fn ensure_container(&mut self, stage: &mut Stage) -> Result<i32> {
        if let Some(c) = &self.running {
            return Ok(c.pid1);
        }
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        stage.say("Starting the container of step b first.");
        let c = container::start(&Spec::new(&root, &sleeper()).with_hostname(HOSTNAME))?;
        stage.syscalls();
        let pid1 = c.pid1;
        self.running = Some(c);
        Ok(pid1)
    }

    fn stop_container(&mut self) -> Result<()> {
        if let Some(mut c) = self.running.take() {
            c.kill()?;
        }
        Ok(())
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command(
            "mkdir -p rootfs/bin rootfs/proc rootfs/dev rootfs/tmp\n\
             cp /bin/busybox rootfs/bin/ && rootfs/bin/busybox --install -s rootfs/bin\n\
             du -sh rootfs",
        );
        let rootfs = Rootfs::build()?;
        let summary = rootfs.summary()?;
        stage.view(
            "The new root filesystem",
            &views::container::rootfs_summary(&summary),
        );
        stage.say(&format!(
            "{} in all: that is the whole operating system the container will see. nslab recorded the \
             directory in its ledger before making it, so it is removed at the end (or by `nslab cleanup`).",
            views::container::human(summary.bytes)
        ));
        self.rootfs = Some(rootfs);
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        stage.command(&format!("sudo chroot {} /bin/sh", root.display()));
        let chroot = container::escape_attempt(&root, RootMode::Chroot)?;
        stage.syscalls();
        stage.view(
            "chroot, then the classic escape (done for real in a child)",
            &views::container::escape(&chroot),
        );
        stage.say(if chroot.escaped {
            "The child walked out: chroot only moved where its path lookups start, and a process with \
             CAP_SYS_CHROOT can move it again. The host's tree was mounted all along."
        } else {
            "This time the escape did not reach the host's / (is nslab itself running in a chroot?)."
        });

        stage.command(&format!(
            "sudo unshare --mount sh -c 'mount --make-rprivate / && mount --bind {r} {r} && cd {r} && \
             pivot_root . . && umount -l . && exec /bin/sh'",
            r = root.display()
        ));
        let pivot = container::escape_attempt(&root, RootMode::PivotRoot)?;
        stage.syscalls();
        stage.view(
            "pivot_root in a private mount namespace, then the same escape",
            &views::container::escape(&pivot),
        );

        stage.command(&format!(
            "sudo nslab run --rootfs {} --hostname {HOSTNAME} -- sleep 1000 &",
            root.display()
        ));
        let c = container::start(&Spec::new(&root, &sleeper()).with_hostname(HOSTNAME))?;
        let calls = stage.syscalls();
        let host = container::mountinfo_of(std::process::id() as i32)?;
        let inside = container::mountinfo_of(c.pid1)?;
        stage.view(
            &format!(
                "The host's mount table (/proc/{}/mountinfo)",
                std::process::id()
            ),
            &views::container::mounts(&host, 8),
        );
        stage.view(
            &format!("The container's mount table (/proc/{}/mountinfo)", c.pid1),
            &views::container::mounts(&inside, 20),
        );
        stage.say(&format!(
            "The host has {} mounts; the container has {}: its root (the bind mount of the directory), its \
             /dev and its /proc. The old root was unmounted after pivot_root: nothing of the host's tree is \
             left to escape to. These mounts exist only in the container's mount namespace; the host's \
             table did not change.",
            host.len(),
            inside.len()
        ));
        if calls.iter().any(|c| c.starts_with("sched_setaffinity")) {
            stage.say(
                "The two sched_setaffinity lines are for speed, not isolation: while PID 1 builds its root \
                 and nslab prepares the rest, PID 1 keeps off the CPU nslab is on, so the two work side by \
                 side instead of taking turns. It takes back its CPUs before the command starts, which \
                 inherits them as after any fork.",
            );
        }
        self.running = Some(c);
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        let pid1 = self.ensure_container(stage)?;
        stage.command(
            "sudo unshare --pid --fork --mount --uts --ipc --mount-proc chroot rootfs /bin/sh",
        );
        let host = ns::host_reference();
        let inside = ns::of_pid(pid1).context("the container's PID 1 vanished")?;
        stage.view(
            "Namespaces: the host's and the container's",
            &views::ns::compare(&[
                views::ns::Column {
                    label: format!("host ({})", short_whose(&host.whose)),
                    set: &host.set,
                },
                views::ns::Column {
                    label: format!("container (PID {pid1})"),
                    set: &inside,
                },
            ]),
        );
        let new: Vec<&str> = [NsKind::Pid, NsKind::Mnt, NsKind::Uts, NsKind::Ipc]
            .iter()
            .filter(|k| inside.inode(**k).is_some() && inside.inode(**k) != host.set.inode(**k))
            .map(|k| k.file())
            .collect();
        stage.say(&format!(
            "New: {}. Shared with the host: the rest (network, user, cgroup, time), because nslab did not ask \
             for them.",
            new.join(", ")
        ));
        let theirs = container::hostname_of(pid1)?;
        stage.syscalls();
        stage.view(
            "hostname (uname -n), in each UTS namespace",
            &views::table::render(
                &["", "hostname"],
                &[
                    vec!["host".into(), container::own_hostname()],
                    vec![format!("container (PID {pid1})"), theirs],
                ],
            ),
        );
        let (proc_inside, ps) =
            procs::table_seen_by(pid1).context("reading the container's /proc")?;
        stage.view(
            &format!(
                "ps inside: the container's own /proc ({} from the host)",
                proc_inside.display()
            ),
            &views::procs::table(&ps),
        );
        if let Some(p) = procs::process(pid1) {
            stage.say(&format!(
                "Inside, `{}` is PID 1; the host knows it as PID {pid1} (NSpid: {}). It is the container's \
                 command itself, started by execve after pivot_root: no nslab code runs inside the container.",
                p.comm,
                p.nspid.iter().map(i32::to_string).collect::<Vec<_>>().join(" ")
            ));
        }
        self.stop_container()?;
        stage.syscalls();
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        self.stop_container()?;
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        let limits = Limits {
            memory_bytes: Some(100 << 20),
            cpu_quota_us: Some(CPU_PERIOD_US / 2),
            pids: Some(BOMB_PIDS),
        };
        stage.command(
            "mkdir CGROUP                         # …/nslab/container (v1: in each hierarchy)\n\
             echo 104857600 > CGROUP/memory.max   # v1: memory.limit_in_bytes\n\
             echo '50000 100000' > CGROUP/cpu.max # v1: cpu.cfs_quota_us, cpu.cfs_period_us\n\
             echo 20 > CGROUP/pids.max",
        );
        let cg = NslabCgroup::create("container")?;
        runtime::apply_limits(&cg, &limits)?;
        stage.syscalls();
        const VIEW: [Concept; 5] = [
            Concept::MemoryLimit,
            Concept::CpuQuota,
            Concept::PidsLimit,
            Concept::PidsCurrent,
            Concept::MemoryUsage,
        ];
        stage.view(
            "The container's cgroup, before",
            &views::cgroup::render_cgroup(&cg.cgroup.dirs, &cg.read_all(&VIEW)),
        );
        stage.command("f(){ f | f & }; f      # a fork bomb, inside the container");
        // The shell forks twice, `sleep` and a subshell that starts the bomb, then only
        // `wait`s: once the limit is reached any fork of its own would fail, and a
        // non-interactive sh exits on that. (Started by the shell itself, `f | f &`
        // would be two forks, the second racing the first half of the bomb.)
        let bomb = "sleep 1000 & f(){ f | f & }; (f) 2>/dev/null & wait".to_string();
        let mut spec = Spec::new(&root, &["sh".into(), "-c".into(), bomb]).with_hostname(HOSTNAME);
        runtime::put_in(&mut spec, &cg);
        let mut c = container::start(&spec)?;
        stage.syscalls();
        if cg.cgroup.dirs.iter().any(|d| d.version == CgVersion::V1) {
            stage.say(
                "On cgroup v1 nslab joins with `echo 0 > tasks` in each hierarchy rather than \
                 `echo $$ > cgroup.procs`: `tasks` moves only the calling thread (0 = itself), which the \
                 kernel does without the system-wide lock a `cgroup.procs` write takes, and waits an RCU \
                 grace period for (the kernel's wait until every CPU is past any use of the old state; \
                 often 10 ms or more). A process just cloned has one thread, so it is the same move. \
                 The joins come after pivot_root: PID 1 opened each cgroup filesystem beforehand (the O_PATH \
                 openat lines) and reaches its cgroup through those: the cgroup need not exist before PID 1's \
                 root is ready, and `nslab run` makes it meanwhile.",
            );
        } else if c.born_in_cgroup {
            stage.say(
                "On cgroup v2 nslab does not move PID 1 at all: clone3 with CLONE_INTO_CGROUP and a \
                 descriptor of the cgroup's directory (Linux 5.7) creates it inside. `echo $$ > cgroup.procs` \
                 would take a system-wide lock that first waits for an RCU grace period (the kernel's wait \
                 until every CPU is past any use of the old state; often 10 ms or more).",
            );
        }
        sys::sleep(Duration::from_secs(2))?;
        let during = cg.read_all(&VIEW);
        let pids_dir = cg.dir_for("pids").map(|d| d.path.clone());
        let refused = pids_dir.as_deref().and_then(container::pids_refused);
        stage.view(
            "The same cgroup, two seconds into the fork bomb",
            &views::cgroup::render_cgroup(&cg.cgroup.dirs, &during),
        );
        let now = match cg.read(Concept::PidsCurrent) {
            Ok(Reading::Count(n)) => n.to_string(),
            _ => "?".into(),
        };
        stage.say(&format!(
            "{now} processes of at most {BOMB_PIDS}: the kernel refused {} forks (pids.events `max`), and \
             the machine did not notice. Without pids.max the bomb would fill the host's process table.",
            refused.map(|n| n.to_string()).unwrap_or_else(|| "many".into())
        ));
        stage.command(&format!(
            "sudo kill -9 {}      # PID 1 of the container",
            c.pid1
        ));
        c.kill()?;
        stage.syscalls();
        // The kernel kills the namespace's other processes as PID 1 dies; they leave the
        // cgroup within moments. Read until it is empty (or 3 s have passed).
        let count = || match cg.read(Concept::PidsCurrent) {
            Ok(Reading::Count(n)) => n,
            _ => 0,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while count() > 0 && std::time::Instant::now() < deadline {
            sys::sleep(Duration::from_millis(20))?;
        }
        let after = count();
        stage.say(&format!(
            "Killing PID 1 ended every process of its PID namespace at once: the cgroup holds {after} now."
        ));
        drop(cg);
        stage.syscalls();
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        self.stop_container()?;
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        net::step_e(&root, HOSTNAME, stage)
    }

    fn step_f(&mut self, stage: &mut Stage) -> Result<()> {
        self.stop_container()?;
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        let limits = Limits {
            memory_bytes: Some(100 << 20),
            cpu_quota_us: Some(CPU_PERIOD_US / 2),
            pids: Some(50),
        };
        stage.command(
            "sudo nslab run --memory 100M --cpus 0.5 --pids 50 --hostname nslab -- /bin/sh",
        );
        let cg = NslabCgroup::create("container-shell")?;
        runtime::apply_limits(&cg, &limits)?;
        let mut spec = Spec::new(&root, &["/bin/sh".to_string()]).with_hostname("nslab");
        runtime::put_in(&mut spec, &cg);
        spec.env
            .push(("PS1".into(), "[nslab container] \\w # ".into()));
        stage.say("Your shell is starting as PID 1 of the container. Type `exit` to come back to the lesson.");
        let mut c = container::start(&spec)?;
        let code = c.wait()?;
        sys::clear_interrupt();
        stage.syscalls();
        stage.say(&format!(
            "The shell exited with status {code}; its namespaces ended with it."
        ));
        drop(cg);
        Ok(())
    }
}

fn short_whose(whose: &str) -> &str {
    if whose.starts_with("PID 1") {
        "PID 1"
    } else {
        "nslab"
    }
}

impl Lesson for ContainerLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "A root filesystem",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "chroot, and why it is not a wall",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "Namespaces, /proc and a hostname",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "Limits: memory, CPU and pids",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "A network of its own",
            keyboard: false,
            run: Self::step_e,
        },
        Step {
            id: 'f',
            title: "A shell inside",
            keyboard: true,
            run: Self::step_f,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}

// ---------------------------------------------------------------------------------------
// The check.

const FOUND: &str = "container made by unshare";
const ROOT: &str = "root directory";
const NAMESPACES: [(NsKind, &str, &str); 4] = [
    (NsKind::Pid, "PID namespace", "no-pid"),
    (NsKind::Mnt, "mount namespace", "no-mount"),
    (NsKind::Uts, "UTS namespace", "no-uts"),
    (NsKind::Ipc, "IPC namespace", "no-ipc"),
];
const HOSTNAME_FACT: &str = "hostname";
const INIT: &str = "PID 1 inside";
const PROC: &str = "/proc inside";
const CGROUP: &str = "cgroup of PID 1";
const LIMITS: [(Concept, &str, &str, &str); 3] = [
    (
        Concept::MemoryLimit,
        "memory limit",
        "memory",
        "no-memory-limit",
    ),
    (Concept::CpuQuota, "CPU limit", "cpu", "no-cpu-limit"),
    (Concept::PidsLimit, "pids limit", "pids", "no-pids-limit"),
];

/// PIDs nslab itself runs (this check, and any lesson on the ledger): never the learner's.
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

fn nothing_found(notes: Vec<String>) -> Observation {
    let mut facts = vec![Fact::new(FOUND, "not found"), Fact::new(ROOT, "-")];
    facts.extend(NAMESPACES.iter().map(|(_, name, _)| Fact::new(*name, "-")));
    for name in [HOSTNAME_FACT, INIT, PROC, CGROUP] {
        facts.push(Fact::new(name, "-"));
    }
    facts.extend(LIMITS.iter().map(|(_, name, _, _)| Fact::new(*name, "-")));
    Observation {
        judged: "no container made by unshare is running".into(),
        facts,
        problem: Some("nothing-found"),
        verify: vec![
            "ps -ef --forest | grep -A2 unshare".into(),
            "sudo lsns -t pid -t uts".into(),
        ],
        notes,
    }
}

/// What the search for the learner's container found.
pub(super) enum Found {
    /// PID 1 of the container, the process that started it, how it was chosen.
    Init {
        init: ProcInfo,
        creator: Option<ProcInfo>,
        notes: Vec<String>,
    },
    /// Nothing to judge: the observation that says so.
    Nothing(Observation),
}

fn check(args: &CheckArgs) -> Result<Observation> {
    match find(args)? {
        Found::Init {
            init,
            creator,
            mut notes,
        } => {
            // A network namespace of its own: the bonus may be under way.
            let me = std::process::id() as i32;
            let net = |pid| ns::link(pid, NsKind::Net).inode;
            if net(init.pid).is_some() && net(init.pid) != net(me) {
                notes.push(
                    "it has a network namespace of its own: `sudo nslab check 5b` judges the bonus (veth, NAT)"
                        .into(),
                );
            }
            judge(&init, creator.as_ref(), notes)
        }
        Found::Nothing(obs) => Ok(obs),
    }
}

/// Find the container the learner made with `unshare` (or the one `--pid` names).
pub(super) fn find(args: &CheckArgs) -> Result<Found> {
    let me = std::process::id() as i32;
    let host_pid_ns = ns::link(me, NsKind::Pid)
        .inode
        .context("reading nslab's own /proc/self/ns/pid")?;
    let table = procs::table().context("reading the process table")?;
    let ours = nslab_pids();
    let is_ours = |p: &ProcInfo| {
        procs::ancestors(&table, p.pid)
            .iter()
            .any(|a| ours.contains(&a.pid))
    };
    let by_pid = |pid: i32| table.iter().find(|p| p.pid == pid);

    if let Some(pid) = args.pid {
        let p = by_pid(pid).ok_or_else(|| {
            Problem::usage(
                format!("there is no process with PID {pid}"),
                "give the host PID of the container's shell (ps -ef --forest | grep -A2 unshare)",
            )
        })?;
        let Some(pid_ns) = p.pid_ns.filter(|&n| n != host_pid_ns) else {
            let mut obs = nothing_found(vec![]);
            obs.facts[0].value = format!("PID {pid} is in the host's PID namespace");
            obs.judged = format!("PID {pid} ({}), in the host's PID namespace", p.comm);
            obs.problem = Some("host-namespace");
            return Ok(Found::Nothing(obs));
        };
        let init = table
            .iter()
            .find(|q| q.pid_ns == Some(pid_ns) && q.innermost_pid() == 1)
            .unwrap_or(p);
        return Ok(Found::Init {
            init: init.clone(),
            creator: by_pid(init.ppid).cloned(),
            notes: vec![format!(
                "judging the container of PID {pid}, as asked with --pid"
            )],
        });
    }

    // Candidates: PID 1 of a PID namespace other than the host's, started by `unshare`.
    let inits: Vec<&ProcInfo> = table
        .iter()
        .filter(|p| {
            !p.is_zombie()
                && p.pid_ns.is_some()
                && p.pid_ns != Some(host_pid_ns)
                && p.innermost_pid() == 1
        })
        .filter(|p| !is_ours(p))
        .collect();
    let learner: Vec<&ProcInfo> = inits
        .iter()
        .copied()
        .filter(|p| by_pid(p.ppid).is_some_and(|c| c.comm == "unshare"))
        .collect();
    let mut notes = vec![
        "nslab judges a container whose PID 1 was started by `unshare` (containers of Docker, Podman and \
         services are left alone); --pid HOSTPID picks one"
            .to_string(),
    ];
    if inits.len() > learner.len() {
        notes.push(format!(
            "ignored {} other PID namespace(s) not made by unshare",
            inits.len() - learner.len()
        ));
    }
    // Prefer one that has its own root (the exercise's), then the newest.
    let own_root = container::root_identity(me).ok();
    let best = learner
        .iter()
        .max_by_key(|p| {
            (
                container::root_identity(p.pid).ok() != own_root,
                p.start_time,
            )
        })
        .copied();
    let Some(init) = best else {
        return Ok(Found::Nothing(nothing_found(notes)));
    };
    if learner.len() > 1 {
        notes.push(format!("{} containers made by unshare are running; judging one with its own root, newest first", learner.len()));
    }
    Ok(Found::Init {
        init: init.clone(),
        creator: by_pid(init.ppid).cloned(),
        notes,
    })
}

fn judge(init: &ProcInfo, creator: Option<&ProcInfo>, notes: Vec<String>) -> Result<Observation> {
    let me = std::process::id() as i32;
    let mut problem: Option<&'static str> = None;
    let mut facts = vec![Fact::new(FOUND, "found")];

    let root = match (
        container::root_identity(init.pid),
        container::root_identity(me),
    ) {
        (Ok(a), Ok(b)) if a != b => "its own, not the host's".to_string(),
        (Ok(_), Ok(_)) => {
            problem = problem.or(Some("no-root"));
            "the host's /".to_string()
        }
        _ => "unreadable".to_string(),
    };
    facts.push(Fact::new(ROOT, root));

    let host = ns::host_reference();
    let theirs = ns::of_pid(init.pid).context("the container's PID 1 vanished")?;
    for (kind, name, hint) in NAMESPACES {
        let v = match (theirs.inode(kind), host.set.inode(kind)) {
            (Some(a), Some(b)) if a != b => "its own",
            (Some(_), Some(_)) => {
                problem = problem.or(Some(hint));
                "the host's"
            }
            _ => "unreadable",
        };
        facts.push(Fact::new(name, v));
    }

    let hostname = container::hostname_of(init.pid).unwrap_or_default();
    let host_name = container::own_hostname();
    let hn = if hostname.is_empty() {
        "unreadable".to_string()
    } else if hostname == host_name {
        problem = problem.or(Some("no-hostname"));
        "the host's (not set inside)".to_string()
    } else {
        "set inside, not the host's".to_string()
    };
    facts.push(Fact::new(HOSTNAME_FACT, hn));

    let init_fact = if procs::is_shell(&init.comm) {
        "a shell, running".to_string()
    } else {
        problem = problem.or(Some("not-a-shell"));
        format!("`{}`, not a shell", init.comm)
    };
    facts.push(Fact::new(INIT, init_fact));

    let proc_fact = match pidns::pid1_start_time_seen_by(init.pid) {
        Some(t) if t == init.start_time => "mounted for this namespace".to_string(),
        Some(_) => {
            problem = problem.or(Some("no-mount-proc"));
            "the host's (ps inside lists every host process)".to_string()
        }
        None => {
            problem = problem.or(Some("no-mount-proc"));
            "none (no /proc/1 inside)".to_string()
        }
    };
    facts.push(Fact::new(PROC, proc_fact));

    // The cgroup: PID 1's, per controller, must not be the one nslab (run from another
    // terminal) is in, and must hold each limit.
    let layout = Layout::read()?;
    let controllers = ["memory", "cpu", "pids"];
    let theirs_cg = Cgroup::of_pid(&layout, init.pid, &controllers)?;
    let mine_cg = Cgroup::of_pid(&layout, me, &controllers)?;
    let mut own_cgroup = false;
    let mut limit_facts = Vec::new();
    let mut values = Vec::new();
    let mut dirs = Vec::new();
    for (concept, name, controller, hint) in LIMITS {
        let dir = theirs_cg.dir_for(controller).map(|d| d.path.clone());
        let separate = dir.is_some() && dir != mine_cg.dir_for(controller).map(|d| d.path.clone());
        own_cgroup |= separate;
        if let Some(d) = &dir {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        let reading = theirs_cg.read(concept).ok();
        let set = match &reading {
            Some(Reading::Limit(Max::Value(v))) => {
                values.push(format!(
                    "{name} {}",
                    if controller == "memory" {
                        views::container::human(*v)
                    } else {
                        v.to_string()
                    }
                ));
                true
            }
            Some(Reading::CpuQuota(q)) if q.quota_us.is_some() => {
                values.push(format!("{name} {:.2} CPU", q.cpus().unwrap_or(0.0)));
                true
            }
            _ => false,
        };
        let v = if set && separate {
            "set"
        } else if set {
            // A limit on nslab's own cgroup too (the machine's, not the learner's).
            problem = problem.or(Some("no-cgroup"));
            "only the cgroup everything else is in has one"
        } else {
            limit_facts.push(hint);
            "none"
        };
        facts.push(Fact::new(name, v));
    }
    let cg_fact = if own_cgroup {
        "its own"
    } else {
        problem = problem.or(Some("no-cgroup"));
        "the same as everything else's"
    };
    facts.insert(facts.len() - LIMITS.len(), Fact::new(CGROUP, cg_fact));
    if let Some(h) = limit_facts.first() {
        problem = problem.or(Some(h));
    }

    let creator = match creator {
        Some(c) => format!("started by `{}` (host PID {})", c.cmdline, c.pid),
        None => "its creator has exited".into(),
    };
    let nspid = init
        .nspid
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let judged = format!(
        "container {creator}; its PID 1 is `{}` = host PID {} (NSpid: {nspid}), hostname {hostname:?}, cgroup {}{}",
        init.comm,
        init.pid,
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        if values.is_empty() { String::new() } else { format!(" ({})", values.join(", ")) }
    );
    let mut verify = vec![
        format!("sudo ls -l /proc/{}/ns/ /proc/$$/ns/", init.pid),
        format!("sudo ls /proc/{}/root/", init.pid),
        format!("sudo nsenter -t {} -u hostname", init.pid),
        format!("sudo nsenter -t {} -p -m ps", init.pid),
        format!("cat /proc/{}/cgroup", init.pid),
    ];
    for d in &dirs {
        verify.push(format!("ls {}", d.display()));
    }
    Ok(Observation {
        judged,
        facts,
        problem,
        verify,
        notes,
    })
}
