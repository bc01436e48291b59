//! Lesson 9: joining a running container's namespaces (setns, nsenter, pinning), and the
//! check of a process brought into a hand-built container from outside.

mod check;

use crate::kernel::container::{self, Container, Spec};
use crate::kernel::join::{self, Joiner};
use crate::kernel::net::{self, pin, Netns};
use crate::kernel::ns::{self, NsKind};
use crate::kernel::procs;
use crate::kernel::removal;
use crate::kernel::rootfs::Rootfs;
use crate::kernel::trace;
use crate::ledger::Resource;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};
use std::os::fd::AsRawFd;

pub static INFO: LessonInfo = LessonInfo {
    number: 9,
    slug: "join",
    title: "Joining a running container",
    summary: "setns(2) and nsenter as `docker exec`; the order of joining; pinning a namespace",
    text: include_str!("../../../lessons/09-join/lesson.md"),
    hints: include_str!("../../../lessons/09-join/hints.md"),
    solution: include_str!("../../../lessons/09-join/solution.md"),
    expected_check: include_str!("../../../lessons/09-join/expected/check.txt"),
    parent: None,
    steps: &Table::<JoinLesson>::OF,
    check: run_check::<check::JoinCheck>,
    needs_root: true,
    names: &[],
};

/// The hostname of the lesson's container.
const HOSTNAME: &str = "nslab-join";

/// State across steps. Fields drop in order: the joiner, then the container it is in,
/// then the pin, then the root both run in.
#[derive(Default)]
struct JoinLesson {
    joiner: Option<Joiner>,
    running: Option<Container>,
    /// The network namespace pinned in step c: its name and its ledger entry.
    pin: Option<(String, Resource)>,
    rootfs: Option<Rootfs>,
}

fn container_command() -> String {
    format!("sudo nslab run --hostname {HOSTNAME} --net -- sleep 1000 &")
}

impl JoinLesson {
    /// Steps may start on their own (`--step c`): start what earlier ones would have. In
    /// the pinned network namespace, if there is one (step d after step c).
    fn ensure_container(&mut self, stage: &mut Stage) -> Result<i32> {
        if let Some(c) = &self.running {
            return Ok(c.pid1);
        }
        if self.rootfs.is_none() {
            self.rootfs = Some(Rootfs::build()?);
        }
        let root = self.rootfs.as_ref().expect("built above").path.clone();
        // A network namespace of its own is the default (only `lo`, up).
        let mut spec = Spec::new(&root, &["sleep".into(), "1000".into()]).with_hostname(HOSTNAME);
        let pinned = match &self.pin {
            Some((name, _)) => Some(
                std::fs::File::open(net::netns_path(name))
                    .with_context(|| format!("opening the pinned namespace {name}"))?,
            ),
            None => None,
        };
        spec.join_netns = pinned.as_ref().map(|f| f.as_raw_fd());
        let c = container::start(&spec)?;
        // How a container is started is lesson 5's subject; here only the result matters.
        trace::take();
        stage.say(&format!(
            "nslab started a container: `sleep 1000` is its PID 1, host PID {}, with its own PID, mount, \
             UTS, IPC, network and cgroup namespaces, its own root and the hostname {HOSTNAME}{}.",
            c.pid1,
            if pinned.is_some() { ", in the pinned network namespace" } else { "" }
        ));
        let pid1 = c.pid1;
        self.running = Some(c);
        Ok(pid1)
    }

    fn ensure_joiner(&mut self, stage: &mut Stage) -> Result<i32> {
        let pid1 = self.ensure_container(stage)?;
        if self.joiner.is_none() {
            stage.command(&format!("sudo nsenter -t {pid1} -a -r -w sleep 1000 &"));
            self.joiner = Some(join::nsenter_all(pid1)?);
            stage.syscalls();
        }
        Ok(self.joiner.as_ref().expect("joined above").host_pid)
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command(&container_command());
        let pid1 = self.ensure_container(stage)?;
        stage.command(&format!("sudo ls -l /proc/{pid1}/ns/"));
        let theirs = ns::of_pid(pid1).context("the container's PID 1 vanished")?;
        stage.view(
            &format!("/proc/{pid1}/ns (the container's PID 1)"),
            &views::ns::links(&theirs),
        );
        stage.command(&format!("sudo nsenter -t {pid1} --uts hostname"));
        let one = join::join_one(pid1, NsKind::Uts)?;
        stage.syscalls();
        stage.before_after(
            &format!(
                "The child's links (PID {}) before and after setns",
                one.before.pid
            ),
            &views::ns::links(&one.before),
            &views::ns::links(&one.after),
        );
        stage.view(
            "Its hostname (uname -n)",
            &views::table::render(
                &["", "hostname"],
                &[
                    vec!["before setns".into(), one.hostname_before.clone()],
                    vec!["after setns".into(), one.hostname_after.clone()],
                ],
            ),
        );
        let changed: Vec<&str> = NsKind::ALL
            .iter()
            .filter(|&&k| one.before.inode(k) != one.after.inode(k))
            .map(|k| k.file())
            .collect();
        stage.say(&format!(
            "Changed: {}. The child is in the container's UTS namespace and sees its hostname \
             `{}`; every other namespace is still nslab's, so it still sees the host's processes, \
             files and network. The descriptor of /proc/{pid1}/ns/uts was all setns needed.",
            if changed.is_empty() {
                "nothing".to_string()
            } else {
                changed.join(", ")
            },
            one.hostname_after
        ));
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        let pid1 = self.ensure_container(stage)?;
        if let Some(j) = self.joiner.take() {
            j.end()?;
        }
        stage.command(&format!(
            "sudo nsenter -t {pid1} -a -r -w sh -c 'echo $$; hostname; ls /; ps'"
        ));
        let j = join::nsenter_all(pid1)?;
        stage.syscalls();
        let rows: Vec<Vec<String>> = j
            .inside
            .entered
            .iter()
            .map(|e| {
                vec![
                    e.kind.file().to_string(),
                    if e.entered {
                        format!("setns(fd, {})", join::flag_name(e.kind))
                    } else {
                        "skipped: already nslab's own".to_string()
                    },
                ]
            })
            .collect();
        stage.view(
            "The namespaces in nsenter's order",
            &views::table::render(&["NAMESPACE", "JOINED BY"], &rows),
        );
        stage.before_after(
            &format!(
                "The joiner's links (host PID {}) when born and once inside",
                j.host_pid
            ),
            &views::ns::links(&j.inside.before),
            &views::ns::links(&j.inside.after),
        );
        let ls = |v: &[String]| {
            let mut s = v.join(" ");
            if s.chars().count() > 40 {
                s = s.chars().take(39).collect::<String>() + "…";
            }
            s
        };
        stage.view(
            "What changed for the joiner",
            &views::table::render(
                &["", "when born", "once inside"],
                &[
                    vec![
                        "hostname".into(),
                        j.inside.hostname_before.clone(),
                        j.inside.hostname_after.clone(),
                    ],
                    vec![
                        "ls /".into(),
                        ls(&j.inside.root_before),
                        ls(&j.inside.root_after),
                    ],
                    vec![
                        "getpid()".into(),
                        j.inside.getpid.to_string(),
                        j.inside.getpid.to_string(),
                    ],
                ],
            ),
        );
        stage.view(
            "ps inside, from the joiner's /proc (the container's)",
            &views::procs::table(&j.inside.ps),
        );
        stage.say(&format!(
            "The joiner's `pid` link was the container's from its first instruction: nslab had set its own \
             `pid_for_children` before the fork. Its getpid() is {} (the host calls it {}); its /proc, its \
             `/` and its hostname are the container's now, because it joined the mount and UTS namespaces \
             and took PID 1's root. It stays inside, like `docker exec` of a long command.",
            j.inside.getpid, j.host_pid
        ));
        self.joiner = Some(j);
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        let pid1 = self.ensure_container(stage)?;
        let inode = ns::link(pid1, NsKind::Net)
            .inode
            .context("reading the container's /proc/PID/ns/net")?;
        let name = format!("nslab-join-{}", std::process::id());
        stage.command(&format!(
            "sudo touch /run/netns/{name}\nsudo mount --bind /proc/{pid1}/ns/net /run/netns/{name}"
        ));
        let before = net::list_netns()?;
        let resource = pin::pin_netns(&name, pid1)?;
        self.pin = Some((name.clone(), resource));
        stage.syscalls();
        let after = net::list_netns()?;
        let list = |names: &[String]| {
            if names.is_empty() {
                "(none)\n".to_string()
            } else {
                names.join("\n") + "\n"
            }
        };
        stage.before_after(
            "ip netns list, before and after",
            &list(&before),
            &list(&after),
        );
        if let Some(line) = net::netns_mountinfo(&name) {
            stage.view(
                "The bind mount in /proc/self/mountinfo",
                &views::ns::mount_line(&line),
            );
        }
        let pinned = net::netns_inode(&name);
        stage.say(&format!(
            "stat /run/netns/{name} gives inode {}: the `net:[{inode}]` of /proc/{pid1}/ns/net. The file is \
             the namespace.",
            pinned.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
        ));

        stage.command(&format!(
            "sudo kill {pid1}\nsudo ip netns exec {name} ip link"
        ));
        if let Some(j) = self.joiner.take() {
            j.end()?;
        }
        if let Some(mut c) = self.running.take() {
            c.kill()?;
        }
        stage.syscalls();
        let holders = procs::table()
            .unwrap_or_default()
            .iter()
            .filter(|p| ns::link(p.pid, NsKind::Net).inode == Some(inode))
            .count();
        let mut ns = Netns::open(&name)?;
        let links = ns.links()?;
        stage.syscalls();
        stage.view(
            &format!("The links of the pinned namespace (net:[{}])", inode),
            &views::net::links(&links, &|_| None),
        );
        stage.say(&format!(
            "The container is gone and {holders} processes are in that network namespace, yet it is still \
             there: the bind mount holds it, and `lo` is still in it. nslab keeps the pin for step d; \
             `ip netns delete` (step d) removes it."
        ));
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        if self.pin.is_some() && self.running.is_none() {
            stage.command(&format!(
                "sudo ip netns exec {} unshare --pid --fork --mount --uts --ipc … sleep 1000 &",
                self.pin.as_ref().map(|(n, _)| n.as_str()).unwrap_or("")
            ));
        }
        let pid1 = self.ensure_container(stage)?;
        let joiner = self.ensure_joiner(stage)?;
        let (proc_dir, inside) =
            procs::table_seen_by(pid1).context("reading the container's /proc")?;
        stage.command(&format!(
            "sudo nsenter -t {pid1} -a -r -w ps -o pid,ppid,comm"
        ));
        stage.view(
            &format!(
                "ps inside the container ({} from the host)",
                proc_dir.display()
            ),
            &views::procs::table(&inside),
        );
        stage.command(&format!(
            "ps -o pid,ppid,comm -p {joiner}; grep NSpid /proc/{joiner}/status"
        ));
        let outside = procs::process(joiner).context("the joiner vanished")?;
        let parent = procs::process(outside.ppid);
        stage.view(
            "The joiner seen from the host",
            &views::procs::table(
                &[Some(outside.clone()), parent]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>(),
            ),
        );
        let inner = outside.innermost_pid();
        stage.say(&format!(
            "Inside, the joiner is PID {inner} and its parent is 0: PPID 0 means \"outside this PID \
             namespace\", as for PID 1. On the host it is PID {joiner}, a child of nslab (PID {}), not of \
             the container's PID 1 ({pid1}); its NSpid line lists both numbers. That is what a `docker exec` \
             process looks like, and what `nslab check 9` looks for.",
            outside.ppid
        ));
        if let Some((name, resource)) = self.pin.take() {
            stage.command(&format!("sudo ip netns delete {name}"));
            removal::release(&resource)?;
            stage.syscalls();
            let still = ns::link(pid1, NsKind::Net).inode;
            stage.say(&format!(
                "The pin is gone; the namespace is not, since the container is in it (net:[{}]). It ends \
                 with its last process.",
                still.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
            ));
        }
        Ok(())
    }
}

impl Lesson for JoinLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "/proc/PID/ns links are handles",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "nsenter -t PID -a, in order",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "Pinning a namespace",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "A joiner seen from inside",
            keyboard: false,
            run: Self::step_d,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
