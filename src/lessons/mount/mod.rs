//! Lesson 7: mount namespaces, propagation, bind mounts and overlay filesystems.
//!
//! Every mount is made by a child of nslab in a mount namespace of its own
//! ([`MountNs`]): none is ever made in nslab's (the host's), and each ends with its child.

mod check;

use crate::kernel::mountinfo::{self, Mount, OverlayLayers};
use crate::kernel::mountns::{MountNs, Scratch};
use crate::kernel::mounts::Propagation;
use crate::kernel::overlay::{EntryKind, Layer};
use crate::kernel::rootfs::Rootfs;
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub static INFO: LessonInfo = LessonInfo {
    number: 7,
    slug: "mount",
    title: "Mount namespaces and overlay filesystems",
    summary: "private mounts, propagation (shared/slave/private), bind mounts, overlayfs copy-up and whiteouts",
    text: include_str!("../../../lessons/07-mount/lesson.md"),
    hints: include_str!("../../../lessons/07-mount/hints.md"),
    solution: include_str!("../../../lessons/07-mount/solution.md"),
    expected_check: include_str!("../../../lessons/07-mount/expected/check.txt"),
    parent: None,
    steps: &Table::<MountLesson>::OF,
    needs_root: true,
    names: &[],
    check: run_check::<check::MountCheck>,
};

/// State across steps. Fields drop in order: the namespaces before the directories their
/// mounts were on.
#[derive(Default)]
struct MountLesson {
    /// The first namespace, whose tmpfs on the scratch directory holds every other mount.
    first: Option<MountNs>,
    rootfs: Option<Rootfs>,
    scratch: Option<Scratch>,
}

/// The lines of `mounts` at or below `dir`.
fn under(mounts: &[Mount], dir: &Path) -> Vec<Mount> {
    mounts
        .iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .cloned()
        .collect()
}

fn table_of(pid: i32, dir: &Path) -> Result<Vec<Mount>> {
    Ok(under(&mountinfo::of_pid(pid)?, dir))
}

fn host_table(dir: &Path) -> Result<Vec<Mount>> {
    Ok(under(&mountinfo::own()?, dir))
}

fn files(base: &Path, list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(p, t)| (base.join(p), format!("{t}\n")))
        .collect()
}

impl MountLesson {
    fn base(&mut self) -> Result<PathBuf> {
        if self.scratch.is_none() {
            self.scratch = Some(Scratch::create()?);
        }
        Ok(self.scratch.as_ref().expect("made above").path.clone())
    }

    /// Steps may start on their own (`--step c`): the namespace and tmpfs of step a.
    fn ensure_first(&mut self, stage: &mut Stage) -> Result<PathBuf> {
        let base = self.base()?;
        if self.first.is_none() {
            stage.say("Making the mount namespace and the tmpfs of step a first.");
            let mut ns = MountNs::unshare()?;
            ns.tmpfs(&base)?;
            stage.syscalls();
            self.first = Some(ns);
        }
        Ok(base)
    }

    fn first(&mut self) -> Result<&mut MountNs> {
        self.first
            .as_mut()
            .context("the lesson's mount namespace is not running")
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        let base = self.base()?;
        stage.say(&format!(
            "nslab made the directory {} (on its ledger: removed at the end).",
            base.display()
        ));
        stage.command(&format!(
            "sudo unshare --mount sh -c 'mount -t tmpfs nslab {b} && echo hello > {b}/hello.txt'",
            b = base.display()
        ));
        let mut ns = MountNs::unshare()?;
        let before = table_of(ns.pid(), &base)?;
        ns.tmpfs(&base)?;
        ns.files(
            &[],
            &files(&base, &[("hello.txt", "written inside the namespace")]),
        )?;
        stage.syscalls();
        let inside = table_of(ns.pid(), &base)?;
        let host = host_table(&base)?;
        stage.before_after(
            &format!(
                "/proc/{}/mountinfo, lines under BASE = {}",
                ns.pid(),
                base.display()
            ),
            &views::mounts::table(&before, Some(&base)),
            &views::mounts::table(&inside, Some(&base)),
        );
        stage.view(
            &format!(
                "/proc/{}/mountinfo (nslab, the host's namespace), lines under BASE",
                std::process::id()
            ),
            &views::mounts::table(&host, Some(&base)),
        );
        let seen_inside = ns.ls(&base)?;
        let seen_host = self
            .scratch
            .as_ref()
            .map(|s| s.ls_from_host(""))
            .unwrap_or_default();
        stage.view(
            "ls BASE, from each side",
            &views::table::render(
                &["", "ls BASE"],
                &[
                    vec![format!("inside (PID {})", ns.pid()), seen_inside.join("  ")],
                    vec!["the host".into(), seen_host.join("  ")],
                ],
            ),
        );
        stage.say(&format!(
            "Inside, BASE is a tmpfs holding {} name(s); the host's table has {} line(s) under BASE and its \
             directory is {}. One directory, two mount tables.",
            seen_inside.len(),
            host.len(),
            if seen_host.is_empty() { "empty" } else { "not empty" }
        ));
        self.first = Some(ns);
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        let base = self.ensure_first(stage)?;
        let me = std::process::id() as i32;
        let first_pid = self.first()?.pid();
        let root = |mounts: Vec<Mount>| -> Vec<Mount> {
            mounts
                .into_iter()
                .filter(|m| m.mount_point == Path::new("/"))
                .collect()
        };
        stage.view(
            &format!("The root mount: the host's (nslab, PID {me}) and the namespace's (PID {first_pid})"),
            &views::mounts::table(
                &[root(mountinfo::own()?), root(mountinfo::of_pid(first_pid)?)].concat(),
                None,
            ),
        );
        let host_root = root(mountinfo::own()?);
        let host_shared = host_root.first().is_some_and(|m| m.is_shared());
        stage.say(&format!(
            "The host's / is {}. The namespace's copy of / is private: `unshare --mount` made every \
             mount private (the mount(…, MS_REC|MS_PRIVATE) of step a), so nothing it mounts reaches the host{}.",
            host_root
                .first()
                .map(|m| m.propagation_text())
                .unwrap_or_else(|| "not visible".into()),
            if host_shared {
                ", although the host's / is shared"
            } else {
                " (here the host's / is private anyway; where systemd runs it is shared:1)"
            }
        ));
        let prop = base.join("prop");
        let (one, two, three) = (prop.join("one"), prop.join("two"), prop.join("three"));
        stage.command(&format!(
            "mount --bind {p} {p} && mount --make-shared {p}",
            p = prop.display()
        ));
        let first = self.first()?;
        first.files(&[one.clone(), two.clone(), three.clone()], &[])?;
        first.bind(&prop, &prop)?;
        first.propagation(&prop, Propagation::Shared)?;
        stage.syscalls();
        stage.command(&format!(
            "sudo nsenter -t {first_pid} -m unshare --mount --propagation unchanged sh"
        ));
        let mut second = MountNs::copy_of(self.first()?)?;
        stage.syscalls();
        let second_pid = second.pid();
        let shown = |pid: i32| -> Result<String> {
            Ok(views::mounts::table(&table_of(pid, &prop)?, Some(&base)))
        };
        stage.view(
            &format!("Under BASE/prop: the first namespace (PID {first_pid})"),
            &shown(first_pid)?,
        );
        stage.view(
            &format!("Under BASE/prop: the second, a copy of it (PID {second_pid})"),
            &shown(second_pid)?,
        );
        let group = table_of(second_pid, &prop)?
            .first()
            .and_then(|m| m.peer_group());
        stage.say(&format!(
            "Both copies of BASE/prop are in peer group {}: what is mounted below one is mounted below the other.",
            group.map(|g| g.to_string()).unwrap_or_else(|| "?".into())
        ));
        stage.command(&format!(
            "mount -t tmpfs nslab {}      # in the first",
            one.display()
        ));
        let before = shown(second_pid)?;
        self.first()?.tmpfs(&one)?;
        stage.syscalls();
        stage.before_after(
            &format!("The second namespace's table (PID {second_pid}), before and after"),
            &before,
            &shown(second_pid)?,
        );
        stage.command(&format!(
            "mount --make-slave {}      # in the second",
            prop.display()
        ));
        second.propagation(&prop, Propagation::Slave)?;
        stage.syscalls();
        stage.command(&format!(
            "mount -t tmpfs nslab {}      # in the second\n\
             mount -t tmpfs nslab {}    # in the first",
            two.display(),
            three.display()
        ));
        second.tmpfs(&two)?;
        self.first()?.tmpfs(&three)?;
        stage.syscalls();
        stage.view(
            &format!("The first namespace (PID {first_pid}) now"),
            &shown(first_pid)?,
        );
        stage.view(
            &format!("The second, a slave (PID {second_pid}) now"),
            &shown(second_pid)?,
        );
        let master = table_of(second_pid, &prop)?
            .first()
            .and_then(|m| m.master());
        let in_first = table_of(first_pid, &two)?.len();
        let in_second = table_of(second_pid, &three)?.len();
        stage.say(&format!(
            "The slave's BASE/prop shows master:{}: it receives from its old peers ({} arrived from the first) \
             but sends nothing back ({} of the second's tmpfs on BASE/prop/two in the first). A private mount \
             does neither: that is what the first namespace's / is.",
            master.map(|g| g.to_string()).unwrap_or_else(|| "?".into()),
            if in_second > 0 { "the tmpfs on BASE/prop/three" } else { "nothing" },
            if in_first > 0 { "a copy" } else { "no copy" }
        ));
        second.end()?;
        stage.syscalls();
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        let base = self.ensure_first(stage)?;
        let (src, dst) = (base.join("bind/src"), base.join("bind/dst"));
        let first_pid = self.first()?.pid();
        let first = self.first()?;
        first.files(
            &[src.clone(), dst.clone()],
            &files(&base, &[("bind/src/note", "written in src")]),
        )?;
        stage.command(&format!("mount --bind {} {}", src.display(), dst.display()));
        first.bind(&src, &dst)?;
        stage.syscalls();
        stage.command(&format!(
            "echo 'written through dst' >> {}/note",
            dst.display()
        ));
        self.first()?
            .append(&dst.join("note"), "written through dst")?;
        stage.syscalls();
        let after = self.first()?.layers(&[src.clone(), dst.clone()])?;
        stage.view(
            "src and dst: the same file",
            &views::mounts::layers(&["src", "dst"], &after),
        );
        stage.command(&format!(
            "mount -o remount,bind,ro {d}\necho again >> {d}/note",
            d = dst.display()
        ));
        self.first()?.read_only(&dst)?;
        let refused = self.first()?.append(&dst.join("note"), "again");
        stage.syscalls();
        stage.view(
            &format!("/proc/{first_pid}/mountinfo, the lines of BASE and the bind mount"),
            &views::mounts::table(
                &table_of(first_pid, &base)?
                    .into_iter()
                    .filter(|m| m.mount_point == base || m.mount_point == dst)
                    .collect::<Vec<_>>(),
                Some(&base),
            ),
        );
        stage.say(&format!(
            "The ROOT column of the bind mount is /bind/src: the directory of BASE's tmpfs it shows. A \
             note appended through dst is in src, because it is the same file. Made read-only, dst {}, \
             while src stays writable: per-mount options (OPT) belong to one mount, not to the filesystem.",
            match &refused {
                Err(_) => "refused the write (EROFS)",
                Ok(()) => "still took the write (unexpected: is this kernel ignoring MS_RDONLY on binds?)",
            }
        ));
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        let base = self.ensure_first(stage)?;
        let ov = base.join("overlay");
        let names = ["lower1", "lower2", "upper", "work", "merged"];
        let dirs: Vec<PathBuf> = names.iter().map(|n| ov.join(n)).collect();
        self.first()?.files(
            &dirs,
            &files(
                &ov,
                &[
                    ("lower1/a.txt", "a from lower1"),
                    ("lower1/shared.txt", "shared from lower1 (on top)"),
                    ("lower2/b.txt", "b from lower2"),
                    ("lower2/c.txt", "c from lower2"),
                    ("lower2/shared.txt", "shared from lower2 (hidden)"),
                ],
            ),
        )?;
        let layers = OverlayLayers {
            lower: vec![dirs[0].clone(), dirs[1].clone()],
            upper: Some(dirs[2].clone()),
            work: Some(dirs[3].clone()),
        };
        stage.command(&format!(
            "cd {}\nmount -t overlay -o lowerdir=lower1:lower2,upperdir=upper,workdir=work none merged",
            ov.display()
        ));
        let first_pid = self.first()?.pid();
        self.first()?.overlay(&layers, &dirs[4])?;
        stage.syscalls();
        stage.view(
            &format!("/proc/{first_pid}/mountinfo: the overlay's line"),
            &views::mounts::table(&table_of(first_pid, &dirs[4])?, Some(&base)),
        );
        let shown = [
            dirs[0].clone(),
            dirs[1].clone(),
            dirs[2].clone(),
            dirs[4].clone(),
        ];
        let labels = ["lower1", "lower2", "upper", "merged"];
        let before = self.first()?.layers(&shown)?;
        stage.view(
            "The layers and the union",
            &views::mounts::layers(&labels, &before),
        );
        stage.command("echo 'b, changed' >> merged/b.txt\nrm merged/c.txt");
        self.first()?.append(&dirs[4].join("b.txt"), "b, changed")?;
        self.first()?.remove(&dirs[4].join("c.txt"))?;
        stage.syscalls();
        let after = self.first()?.layers(&shown)?;
        stage.before_after(
            "The layers, before and after",
            &views::mounts::layers(&labels, &before),
            &views::mounts::layers(&labels, &after),
        );
        let up = &after[2];
        let kind = |l: &Layer, p: &str| l.entry(Path::new(p)).map(|e| e.kind);
        stage.say(&format!(
            "upper now holds b.txt as a {} (the copy-up: the whole file copied from lower2, then \
             changed there), and c.txt, {}. lower2 still has b.txt as it was and c.txt: the lower layers were \
             only read. merged shows shared.txt from lower1: the topmost layer that has a name wins.",
            kind(up, "b.txt").map(|k| k.name()).unwrap_or("missing file"),
            match kind(up, "c.txt") {
                Some(EntryKind::Whiteout) => "a character device 0/0: the whiteout that hides lower2's c.txt",
                Some(k) => k.name(),
                None => "missing",
            }
        ));
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        let base = self.ensure_first(stage)?;
        if self.rootfs.is_none() {
            stage.say("Building lesson 5's root filesystem for the bottom layer.");
            self.rootfs = Some(Rootfs::build()?);
        }
        let rootfs = self.rootfs.as_ref().expect("built above");
        let root = rootfs.path.clone();
        let summary_before = rootfs.summary()?;
        let summary = |l: &Self| l.rootfs.as_ref().map(|r| r.summary()).transpose();
        let img = base.join("image");
        let (app, upper, work, merged) = (
            img.join("app"),
            img.join("upper"),
            img.join("work"),
            img.join("merged"),
        );
        self.first()?.files(
            &[app.join("etc"), upper.clone(), work.clone(), merged.clone()],
            &files(
                &img,
                &[
                    (
                        "app/etc/motd",
                        "Welcome: this line comes from the app layer.",
                    ),
                    ("app/etc/app.conf", "greeting=hello"),
                ],
            ),
        )?;
        let layers = OverlayLayers {
            lower: vec![app.clone(), root.clone()],
            upper: Some(upper.clone()),
            work: Some(work),
        };
        stage.command(&format!(
            "mount -t overlay -o lowerdir={}:{},upperdir={},workdir={} none {}",
            app.display(),
            root.display(),
            upper.display(),
            img.join("work").display(),
            merged.display()
        ));
        self.first()?.overlay(&layers, &merged)?;
        stage.syscalls();
        let script = "cat /etc/motd; echo changed >> /etc/os-release; rm /etc/group; ls /";
        stage.command(&format!(
            "chroot {} /bin/sh -c '{script}'",
            merged.display()
        ));
        let ran = self
            .first()?
            .chroot(&merged, &["/bin/sh".into(), "-c".into(), script.into()])?;
        stage.syscalls();
        stage.view(
            &format!("What the process printed (exit status {})", ran.code),
            &ran.output,
        );
        let up = self.first()?.layers(std::slice::from_ref(&upper))?;
        stage.view(
            "The upper layer afterwards",
            &views::mounts::layers(&["upper"], &up),
        );
        let summary_after = summary(self)?.context("the root filesystem vanished")?;
        let os_release = std::fs::read_to_string(root.join("etc/os-release")).unwrap_or_default();
        let same = summary_before == summary_after;
        stage.view(
            &format!("The bottom layer, {} (read from the host)", root.display()),
            &views::table::render(
                &["", "before", "after"],
                &[
                    vec![
                        "files".into(),
                        summary_before.files.to_string(),
                        summary_after.files.to_string(),
                    ],
                    vec![
                        "bytes".into(),
                        summary_before.bytes.to_string(),
                        summary_after.bytes.to_string(),
                    ],
                    vec![
                        "etc/os-release".into(),
                        String::new(),
                        os_release.lines().next().unwrap_or("").to_string(),
                    ],
                ],
            ),
        );
        stage.say(&format!(
            "The process saw one system: busybox from the bottom layer, /etc/motd from the app layer. Its \
             changes went to upper only: os-release copied up, a whiteout for /etc/group. The bottom layer is \
             {}: lesson 5's container (`nslab run --rootfs`) could start on these layers again and again, \
             each time with a new, empty upper.",
            if same { "exactly as it was" } else { "CHANGED (unexpected)" }
        ));
        if let Some(ns) = self.first.take() {
            ns.end()?;
            stage.syscalls();
        }
        Ok(())
    }
}

impl Lesson for MountLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "A mount only one namespace sees",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "Propagation: shared, slave, private",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "Bind mounts",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "overlayfs: copy-up and whiteouts",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "Image layers",
            keyboard: false,
            run: Self::step_e,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}
