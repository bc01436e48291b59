//! Lesson 6: UTS and IPC namespaces.

mod check;

use crate::kernel::ipc::{self, HostObject};
use crate::kernel::ipcns::{self, NsChild};
use crate::kernel::mountinfo;
use crate::kernel::ns::{self, NsKind};
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};

pub static INFO: LessonInfo = LessonInfo {
    number: 6,
    slug: "uts-ipc",
    title: "UTS and IPC namespaces — names and messages of one's own",
    summary: "a hostname of one's own; System V and POSIX IPC objects live in one IPC namespace",
    text: include_str!("../../../lessons/06-uts-ipc/lesson.md"),
    hints: include_str!("../../../lessons/06-uts-ipc/hints.md"),
    solution: include_str!("../../../lessons/06-uts-ipc/solution.md"),
    expected_check: include_str!("../../../lessons/06-uts-ipc/expected/check.txt"),
    parent: None,
    steps: &Table::<UtsIpcLesson>::OF,
    check: run_check::<check::UtsIpcCheck>,
    needs_root: true,
    names: &[],
};

/// The hostname step a sets inside.
const HOSTNAME: &str = "nslab-uts";
/// The POSIX queue step c makes inside.
const QUEUE: &str = "/nslab-queue";
const HOST_TEXT: &str = "written in the host's IPC namespace";

/// State across steps: the host's segment and queue made in step b live until step d
/// removes them (or the run's teardown does).
#[derive(Default)]
struct UtsIpcLesson {
    segment: Option<HostObject>,
    queue: Option<HostObject>,
}

fn label(name: &str, pid: i32) -> String {
    format!("{name} (PID {pid})")
}

impl UtsIpcLesson {
    /// Steps may be started on their own (`--step d`): make what step b would have.
    fn ensure_host_objects(&mut self, stage: &mut Stage) -> Result<()> {
        if self.segment.is_none() {
            stage.say("Making the host's segment and queue of step b first.");
            self.segment = Some(ipc::make_host_segment(4096, HOST_TEXT)?);
        }
        if self.queue.is_none() {
            self.queue = Some(ipc::make_host_queue("hello from the host")?);
        }
        stage.syscalls();
        Ok(())
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage
            .command("sudo unshare --uts sh -c 'hostname; hostname nslab-uts; hostname'\nhostname");
        let me = std::process::id() as i32;
        let mut child = NsChild::start()?;
        let pid = child.pid();
        let before = ns::of_pid(pid).context("the child vanished")?;
        child.unshare(true, false, false)?;
        let copy = child.uname()?;
        stage.syscalls();
        let after = ns::of_pid(pid).context("the child vanished")?;
        stage.before_after(
            &format!("The child's links (PID {pid}) before and after unshare(CLONE_NEWUTS)"),
            &views::ns::links(&before),
            &views::ns::links(&after),
        );
        stage.say(&format!(
            "Only its `uts` link changed. The new namespace began as a copy: the child's hostname is `{copy}`, \
             the host's."
        ));
        child.set_hostname(HOSTNAME)?;
        let inside = child.uname()?;
        let host = ipcns::uname()?;
        stage.syscalls();
        let own_uts = ns::link(me, NsKind::Uts).inode;
        stage.view(
            "uname -n from both sides, after sethostname inside",
            &views::ipc::hostnames(&[
                (label("nslab", me), own_uts, host.clone()),
                (
                    label("child", pid),
                    after.inode(NsKind::Uts),
                    inside.clone(),
                ),
            ]),
        );
        stage.say(&if host == inside {
            format!("Both still say `{host}`: the name did not change?")
        } else {
            format!(
                "The child says `{inside}`, the host still `{host}`: sethostname changed the child's copy only."
            )
        });
        child.end()?;
        stage.syscalls();
        stage.say(
            "The child has exited, and its UTS namespace with it: nothing to undo on the host.",
        );
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("ipcmk -M 4096 && ipcmk -Q && ipcs");
        let before = ipc::own()?;
        self.segment = Some(ipc::make_host_segment(4096, HOST_TEXT)?);
        self.queue = Some(ipc::make_host_queue("hello from the host")?);
        stage.syscalls();
        let host = ipc::own()?;
        stage.before_after(
            "The host's IPC namespace before and after (/proc/sysvipc/shm and msg)",
            &views::ipc::objects(&before),
            &views::ipc::objects(&host),
        );
        let (seg, queue) = (self.host_segment()?, self.host_queue()?);
        stage.say(&format!(
            "nslab recorded both in its ledger before making them: segment {} (key {}) and queue {} (key {}). \
             Run `ipcs` in another terminal now: they are there too, for every process of the machine.",
            seg.id,
            ipc::key_text(seg.key),
            queue.id,
            ipc::key_text(queue.key)
        ));

        stage.command(&format!(
            "sudo unshare --ipc ipcs\nsudo unshare --ipc ipcs -m -i {}     # no such id there",
            seg.id
        ));
        let mut child = NsChild::start()?;
        child.unshare(false, true, false)?;
        let inside = child.objects()?;
        stage.syscalls();
        stage.view(
            &format!("ipcs in the new IPC namespace (PID {})", child.pid()),
            &views::ipc::objects(&inside),
        );
        let look_seg = child.shmget(seg.key, 0, 0)?;
        let look_queue = child.msgget(queue.key, 0)?;
        stage.syscalls();
        stage.say(&format!(
            "Empty, and the same keys name nothing there: shmget({}, 0, 0) = {}, msgget = {}.",
            ipc::key_text(seg.key),
            look_seg.shown,
            look_queue.shown
        ));
        let made = child.shmget(seg.key, 8192, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)?;
        let id = made.id.context("making a segment inside failed")?;
        let inside_text = child.shm_read(id)?;
        let after = child.objects()?;
        let host_text = ipc::shm_read(seg.id)?;
        stage.syscalls();
        stage.view(
            &format!(
                "ipcs inside after shmget({}, 8192, IPC_CREAT|IPC_EXCL)",
                ipc::key_text(seg.key)
            ),
            &views::ipc::objects(&after),
        );
        stage.say(&format!(
            "With the same key, IPC_EXCL succeeds inside: a second object, id {id}, 8192 bytes. Its first \
             bytes read {:?}; the host's segment reads {host_text:?}. Same key, two namespaces, two objects.",
            inside_text
        ));
        child.end()?;
        stage.syscalls();
        Ok(())
    }

    fn host_segment(&self) -> Result<&HostObject> {
        self.segment
            .as_ref()
            .context("the host's segment was not made")
    }

    fn host_queue(&self) -> Result<&HostObject> {
        self.queue.as_ref().context("the host's queue was not made")
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command(
            "sudo unshare --ipc --mount sh -c \\\n  'mount -t mqueue none /dev/mqueue && ls /dev/mqueue'",
        );
        let mut child = NsChild::start()?;
        child.unshare(false, true, true)?;
        let dir = child.mount_mqueue()?;
        let before = child.mq_list(&dir)?;
        stage.syscalls();
        if dir != "/dev/mqueue" {
            stage.say(&format!(
                "This machine has no /dev/mqueue directory, so the child mounted its mqueue filesystem on \
                 {dir}: in its own mount namespace, where the host's {dir} is not touched."
            ));
        }
        child.mq_create(QUEUE, "hello")?;
        let after = child.mq_list(&dir)?;
        stage.syscalls();
        stage.before_after(
            &format!(
                "{dir} inside (PID {}), before and after mq_open",
                child.pid()
            ),
            &views::ipc::mqueue(&dir, &before),
            &views::ipc::mqueue(&dir, &after),
        );
        stage.command(&format!("# on the host: open {QUEUE}"));
        let host = ipcns::mq_open_here(QUEUE)?;
        stage.syscalls();
        let host_mounts = mountinfo::own().unwrap_or_default();
        let host_has_mount = host_mounts
            .iter()
            .any(|m| m.fs_type == "mqueue" && m.mount_point.as_os_str() == dir.as_str());
        stage.say(&format!(
            "Inside, the queue is a file of the new mqueue mount. The host's mq_open of the same name = {}: \
             the queue is in the child's IPC namespace only. {}",
            host.shown,
            if host_has_mount {
                format!("(The host has an mqueue mount of its own on {dir}: it lists the host's queues.)")
            } else {
                format!("The mount is in the child's mount namespace: the host's {dir} has no mqueue mount.")
            }
        ));
        child.end()?;
        stage.syscalls();
        stage.say("The child has exited: its namespaces ended, and the queue with them.");
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_host_objects(stage)?;
        stage.command("sudo unshare --ipc sh -c 'ipcmk -M 4096; ipcmk -Q; ipcs'");
        let mut a = NsChild::start()?;
        let a_pid = a.pid();
        a.unshare(false, true, false)?;
        a.shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600)?;
        a.msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600)?;
        let inside = a.objects()?;
        stage.syscalls();
        stage.view(
            &format!("ipcs in the new IPC namespace (PID {a_pid})"),
            &views::ipc::objects(&inside),
        );
        stage.command(&format!(
            "exec 5</proc/{a_pid}/ns/ipc     # hold the namespace open\nsudo kill {a_pid}"
        ));
        let pinned = ipcns::pin_ipc(a_pid)?;
        a.end()?;
        stage.syscalls();
        stage.command("sudo nsenter --ipc=/proc/self/fd/5 ipcs");
        let mut b = NsChild::start()?;
        b.join_ipc(&pinned)?;
        let held = b.objects()?;
        b.end()?;
        stage.syscalls();
        stage.view(
            &format!(
                "ipcs in ipc:[{}], no process left in it, held by an open descriptor",
                pinned
                    .inode
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            &views::ipc::objects(&held),
        );
        stage.say(&format!(
            "PID {a_pid} has exited, but its {} object(s) are still there: an open /proc/PID/ns/ipc keeps the \
             namespace alive, as a bind mount of it would.",
            held.segments.len() + held.queues.len()
        ));
        stage.command("exec 5<&-     # let go of it");
        pinned.close();
        stage.syscalls();
        stage.say(
            "Nothing holds the namespace now: the kernel has freed it with every segment and queue in it. \
             Nobody called IPC_RMID, and nothing of it can be left behind.",
        );

        let (seg, queue) = (self.host_segment()?, self.host_queue()?);
        stage.command(&format!("ipcrm -m {}; ipcrm -q {}", seg.id, queue.id));
        let before = ipc::own()?;
        stage.say(&format!(
            "The host's segment {} and queue {} are still there, though no process uses them: the host's \
             namespace never ends. nslab removes them now, as its ledger says.",
            seg.id, queue.id
        ));
        if let Some(s) = self.segment.take() {
            ipc::release(&s)?;
        }
        if let Some(q) = self.queue.take() {
            ipc::release(&q)?;
        }
        stage.syscalls();
        let after = ipc::own()?;
        stage.before_after(
            "The host's IPC namespace before and after IPC_RMID",
            &views::ipc::objects(&before),
            &views::ipc::objects(&after),
        );
        Ok(())
    }
}

impl Lesson for UtsIpcLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "A hostname of its own",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "System V objects belong to one IPC namespace",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "POSIX message queues too",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "IPC objects end with their namespace",
            keyboard: false,
            run: Self::step_d,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
