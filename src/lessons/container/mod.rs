//! Lesson 5: a container from its parts, and the check of the hand-built one.

mod check;
pub mod net;
mod net_check;
mod privileges;

use crate::kernel::cgroup::{CgVersion, Concept, NslabCgroup, Reading};
use crate::kernel::container::{self, Container, RootMode, Spec};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs;
use crate::kernel::rootfs::Rootfs;
use crate::kernel::sys;
use crate::lesson::instance::named;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
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
    check: run_check::<check::ContainerCheck>,
    needs_root: true,
    names: &["nslab/container", "nslab/container-shell"],
};

/// The hostname the lesson's containers get.
const HOSTNAME: &str = "nslab-box";
/// Step e's pids ceiling: small, so the fork bomb hits it at once.
const BOMB_PIDS: u64 = 20;

/// State across steps. Fields drop in order: the container before the root it runs in.
#[derive(Default)]
struct ContainerLesson {
    running: Option<Container>,
    /// The system calls of the running container's start.
    start_calls: Vec<String>,
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
        self.start_calls = stage.syscalls();
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
             /dev (with /dev/pts and /dev/shm), its /proc and /sys, and what a runtime lays over parts of \
             them: read-only binds and masks. The old root was unmounted after pivot_root: nothing of the host's tree is \
             left to escape to. These mounts exist only in the container's mount namespace; the host's \
             table did not change.",
            host.len(),
            inside.len()
        ));
        if calls.iter().any(|c| c.starts_with("sched_setaffinity")) {
            stage.say(
                "The two sched_setaffinity lines are for speed, not isolation: while PID 1 builds its root \
                 and nslab prepares the rest, nslab keeps PID 1 off the CPU nslab is on, so the two work \
                 side by side instead of taking turns. PID 1 takes back its CPUs before the command \
                 starts, which inherits them as after any fork.",
            );
        }
        self.running = Some(c);
        self.start_calls = calls;
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
        let kinds = [
            NsKind::Pid,
            NsKind::Mnt,
            NsKind::Uts,
            NsKind::Ipc,
            NsKind::Net,
            NsKind::Cgroup,
            NsKind::User,
            NsKind::Time,
        ];
        let (new, shared): (Vec<NsKind>, Vec<NsKind>) = kinds
            .iter()
            .filter(|k| inside.inode(**k).is_some())
            .partition(|k| inside.inode(**k) != host.set.inode(**k));
        let files = |v: &[NsKind]| v.iter().map(|k| k.file()).collect::<Vec<_>>().join(", ");
        stage.say(&format!(
            "New: {}. Shared with the host: {}. The network namespace (only `lo`, step f) and the cgroup \
             namespace (in which the container's own cgroup is `/`) are what every runtime adds to the \
             four of the exercise; a user namespace only a rootless one does.",
            files(&new),
            files(&shared)
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
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        let pid1 = self.ensure_container(stage)?;
        privileges::step_d(pid1, &self.start_calls, stage)?;
        self.stop_container()?;
        stage.syscalls();
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
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
        let cg = NslabCgroup::create(&named("container"))?;
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

    fn step_f(&mut self, stage: &mut Stage) -> Result<()> {
        self.stop_container()?;
        let root = self.ensure_rootfs(stage)?.to_path_buf();
        net::step_f(&root, HOSTNAME, stage)
    }

    fn step_g(&mut self, stage: &mut Stage) -> Result<()> {
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
        let cg = NslabCgroup::create(&named("container-shell"))?;
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
            title: "What a runtime takes away: capabilities, no_new_privs, masked paths",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "Limits: memory, CPU and pids",
            keyboard: false,
            run: Self::step_e,
        },
        Step {
            id: 'f',
            title: "A network of its own",
            keyboard: false,
            run: Self::step_f,
        },
        Step {
            id: 'g',
            title: "A shell inside",
            keyboard: true,
            run: Self::step_g,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
