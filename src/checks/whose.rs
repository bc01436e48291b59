//! Whose is a process, a cgroup or a namespace: nslab's own (a lesson running in another
//! terminal), the learner's (made from a shell with unshare, ip, mkdir), or a stranger's (a
//! container runtime, a systemd service). Every check asks here. Pure: it decides over what
//! a check's observe read, so it is tested without root.

use crate::kernel::mountinfo::Mount;
use crate::kernel::procs::{self, ProcInfo};
use crate::ledger::{self, Resource};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    /// Made by an nslab run (this one or another terminal's): never the learner's work.
    Nslab,
    Learner,
    /// A container's, a service's: left alone and said so.
    Stranger,
}

/// What nslab's live runs recorded making, and the checking nslab itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Processes nslab's runs started: they and what runs under them are nslab's.
    pub pids: Vec<i32>,
    /// The checking nslab itself (0: none). It is nslab's, but what runs under it is not
    /// unless recorded: a script's shell may have become it (`bash -c '…; nslab check 6'`
    /// execs its last command) and have started the learner's shell before.
    pub me: i32,
    pub cgroups: Vec<PathBuf>,
    pub netns: Vec<String>,
}

impl Recorded {
    /// Read what the live runs' files list (part of a check's observe).
    pub fn read() -> Recorded {
        let mut r = Recorded {
            me: std::process::id() as i32,
            ..Recorded::default()
        };
        for res in ledger::all_recorded() {
            match res {
                Resource::Process { pid, .. } => r.pids.push(pid),
                Resource::Cgroup { path, .. } => r.cgroups.push(path),
                Resource::NetNs { name, .. } => r.netns.push(name),
                _ => {}
            }
        }
        r
    }
}

/// Programs that start containers or manage services: what descends from them is theirs.
const LAUNCHERS: &[&str] = &[
    "containerd-shim",
    "containerd",
    "dockerd",
    "conmon",
    "runc",
    "crun",
    "lxc-start",
    "systemd-nspawn",
    "podman",
];

/// Cgroup path components of service managers and container runtimes.
const CGROUP_OWNERS: &[&str] = &[
    "docker",
    "containerd",
    "kubepods",
    "kubepods.slice",
    "libpod_parent",
    "lxc",
    "lxc.payload",
    "podman",
    "garden",
];
const UNIT_SUFFIXES: &[&str] = &[".slice", ".scope", ".service", ".socket", ".mount", ".swap"];

/// The name nslab gives every object it makes starts with this.
pub const NSLAB_PREFIX: &str = "nslab-";

/// Whose is process `pid` of `table`? nslab's when it or an ancestor is a process nslab
/// recorded (or nslab itself); a stranger's when a container runtime is among its ancestors;
/// the learner's when a shell or `unshare` is; a stranger's otherwise (a service).
pub fn process(table: &[ProcInfo], pid: i32, recorded: &Recorded) -> Whose {
    let chain = procs::ancestors(table, pid);
    if pid == recorded.me || chain.iter().any(|p| recorded.pids.contains(&p.pid)) {
        Whose::Nslab
    } else if chain
        .iter()
        .any(|p| LAUNCHERS.iter().any(|l| p.comm.starts_with(l)))
    {
        Whose::Stranger
    } else if chain
        .iter()
        .any(|p| procs::is_shell(&p.comm) || p.comm == "unshare")
    {
        Whose::Learner
    } else {
        Whose::Stranger
    }
}

/// Whose is a shell in a user namespace of its own (lesson 8), owned on the host by
/// `owner`: as [`process`], and of the learner's, another user's (a classroom neighbour's)
/// when the learner is known (`learner`) and the shell is neither theirs nor root's (root's
/// may be theirs, started through sudo).
pub fn rootless_shell(
    table: &[ProcInfo],
    pid: i32,
    recorded: &Recorded,
    owner: u32,
    learner: Option<u32>,
) -> Whose {
    match process(table, pid, recorded) {
        Whose::Learner if learner.is_some_and(|l| owner != l && owner != 0) => Whose::Stranger,
        w => w,
    }
}

/// A process's terminal as /proc/PID/stat shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terminal {
    /// Its controlling terminal (`tty_nr`), 0 when none.
    pub tty_nr: i32,
    /// Its session: the PID of the session leader, 0 when unknown.
    pub session: i32,
}

/// Whose is process `pid`, its terminal considered: as [`process`], and also the learner's
/// when no container runtime is among its ancestors and it has a controlling terminal or a
/// shell leads its session (a hog left behind by `sudo sh -c '… &'` is reparented, but stays
/// in the terminal's session).
pub fn process_on_terminal(
    table: &[ProcInfo],
    pid: i32,
    recorded: &Recorded,
    term: Terminal,
) -> Whose {
    let w = process(table, pid, recorded);
    let launched = procs::ancestors(table, pid)
        .iter()
        .any(|p| LAUNCHERS.iter().any(|l| p.comm.starts_with(l)));
    if w != Whose::Stranger || launched {
        return w;
    }
    let leader_is_shell = term.session > 0
        && table
            .iter()
            .find(|p| p.pid == term.session)
            .is_some_and(|p| procs::is_shell(&p.comm));
    if term.tty_nr != 0 || leader_is_shell {
        Whose::Learner
    } else {
        Whose::Stranger
    }
}

/// Whose is the cgroup at `path` (from its hierarchy's root, as /proc/PID/cgroup shows it),
/// whose directory is `dir`? nslab's under its `nslab` parent or in a recorded directory; a stranger's
/// when a systemd unit or a container's; the learner's otherwise.
pub fn cgroup(path: &str, dir: &Path, recorded: &Recorded) -> Whose {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if comps.contains(&"nslab") || recorded.cgroups.iter().any(|c| dir.starts_with(c)) {
        return Whose::Nslab;
    }
    let Some(last) = comps.last() else {
        return Whose::Stranger; // the root cgroup is the machine's
    };
    let unit = UNIT_SUFFIXES.iter().any(|s| last.ends_with(s));
    // A container ID: 64 hex digits.
    let container_id = last.len() == 64 && last.chars().all(|c| c.is_ascii_hexdigit());
    let runtime = comps
        .iter()
        .any(|c| CGROUP_OWNERS.contains(c) || c.starts_with("libpod-") || c.starts_with("docker-"));
    if unit || container_id || runtime {
        Whose::Stranger
    } else {
        Whose::Learner
    }
}

/// Where container runtimes and image stores keep their layers and mounts: an overlay
/// there is a container's root, not a learner's exercise.
const RUNTIME_DIRS: &[&str] = &[
    "/var/lib/docker",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/lib/containers",
    "/run/containers",
    "/var/lib/lxc",
    "/var/lib/lxd",
    "/var/lib/kubelet",
    "/var/lib/snapd",
    "/snap",
];

/// Whose is a mount (an overlay's layers considered): nslab's when it or a layer lies in a
/// directory nslab named (`nslab-…`); a stranger's when in a container runtime's
/// directory (rootless ones under `~/.local/share/containers` too); the learner's otherwise.
pub fn mount(m: &Mount) -> Whose {
    let mut paths = vec![m.mount_point.clone()];
    if let Some(layers) = m.overlay() {
        paths.extend(layers.lower);
        paths.extend(layers.upper);
        paths.extend(layers.work);
    }
    let nslabs = |p: &Path| {
        p.components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with(NSLAB_PREFIX))
    };
    let runtimes = |p: &Path| {
        RUNTIME_DIRS.iter().any(|d| p.starts_with(d))
            || p.to_string_lossy().contains("/.local/share/containers/")
    };
    if paths.iter().any(|p| nslabs(p)) {
        Whose::Nslab
    } else if paths.iter().any(|p| runtimes(p)) {
        Whose::Stranger
    } else {
        Whose::Learner
    }
}

/// Whose is the named network namespace `name` (`ip netns` names)?
pub fn netns(name: &str, recorded: &Recorded) -> Whose {
    if name.starts_with(NSLAB_PREFIX) || recorded.netns.iter().any(|n| n == name) {
        Whose::Nslab
    } else {
        Whose::Learner
    }
}

/// Whose is a System V object with `key`, made by process `creator` (its PID in the
/// object's namespace, as /proc/sysvipc shows it)? nslab's when its key is of nslab's form
/// or its creator is nslab's; the creator's when that process still runs; otherwise the
/// learner's (`ipcmk` makes one and exits; a service using shared memory keeps running).
pub fn sysv_object(table: &[ProcInfo], key: i32, creator: i32, recorded: &Recorded) -> Whose {
    if crate::kernel::ipc::is_nslab_key(key)
        || creator == recorded.me
        || recorded.pids.contains(&creator)
    {
        Whose::Nslab
    } else if table.iter().any(|p| p.pid == creator && !p.is_zombie()) {
        process(table, creator, recorded)
    } else {
        Whose::Learner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
        ProcInfo::fixture(pid, ppid, comm)
    }

    #[test]
    fn processes_are_nslabs_the_learners_or_a_strangers() {
        let table = vec![
            p(1, 0, "init"),
            p(10, 1, "bash"),
            p(11, 10, "sudo"),
            p(12, 11, "unshare"),
            p(13, 12, "sleep"),
            p(20, 1, "containerd-shim"),
            p(21, 20, "bash"),
            p(30, 1, "cron"),
            p(40, 10, "nslab"),
            p(41, 40, "sleep"),
        ];
        let recorded = Recorded {
            pids: vec![40],
            ..Recorded::default()
        };
        let whose = |pid| process(&table, pid, &recorded);
        assert_eq!(whose(13), Whose::Learner);
        assert_eq!(whose(12), Whose::Learner);
        assert_eq!(whose(21), Whose::Stranger, "a shell inside a container");
        assert_eq!(whose(30), Whose::Stranger, "a service");
        assert_eq!(whose(41), Whose::Nslab);
        assert_eq!(whose(99), Whose::Stranger, "not in the table");
        // `bash -c 'unshare … bash & nslab check 6'`: the script's shell became the checking
        // nslab after starting the learner's shell.
        let table = vec![p(1, 0, "init"), p(50, 1, "nslab"), p(51, 50, "bash")];
        let checking = Recorded {
            me: 50,
            ..Recorded::default()
        };
        assert_eq!(process(&table, 50, &checking), Whose::Nslab);
        assert_eq!(process(&table, 51, &checking), Whose::Learner);
    }

    #[test]
    fn a_rootless_shell_is_the_learners_or_roots_not_another_users() {
        let mut table = vec![p(1, 0, "init"), p(10, 1, "bash"), p(11, 10, "unshare")];
        table.push(p(12, 11, "bash"));
        let none = Recorded::default();
        let whose = |owner, learner| rootless_shell(&table, 12, &none, owner, learner);
        assert_eq!(whose(1000, Some(1000)), Whose::Learner);
        assert_eq!(whose(0, Some(1000)), Whose::Learner, "through sudo");
        assert_eq!(whose(1001, Some(1000)), Whose::Stranger, "a neighbour's");
        assert_eq!(
            whose(1001, None),
            Whose::Learner,
            "root checking, nobody behind it"
        );
        let recorded = Recorded {
            pids: vec![11],
            ..Recorded::default()
        };
        assert_eq!(
            rootless_shell(&table, 12, &recorded, 1000, Some(1000)),
            Whose::Nslab
        );
    }

    #[test]
    fn a_terminals_session_makes_a_reparented_process_the_learners() {
        let table = vec![
            p(1, 0, "init"),
            p(10, 1, "bash"),
            p(13, 1, "hog"),
            p(20, 1, "containerd-shim"),
            p(21, 20, "hog"),
            p(30, 1, "cron"),
            p(31, 30, "hog"),
        ];
        let none = Recorded::default();
        let on = |pid, tty_nr, session| {
            process_on_terminal(&table, pid, &none, Terminal { tty_nr, session })
        };
        assert_eq!(on(13, 0, 10), Whose::Learner, "its session is the shell's");
        assert_eq!(on(13, 34816, 13), Whose::Learner, "it has a terminal");
        assert_eq!(on(31, 0, 30), Whose::Stranger, "a service's");
        assert_eq!(
            on(21, 34816, 10),
            Whose::Stranger,
            "a container's, terminal or not"
        );
    }

    #[test]
    fn cgroups_are_nslabs_the_learners_or_a_strangers() {
        let none = Recorded::default();
        let at = |path: &str| cgroup(path, Path::new("/x"), &none);
        for s in [
            "/",
            "/system.slice/docker.service",
            "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "/kubepods/besteffort/pod1",
            "/machine.slice/libpod-abc.scope",
            "/user.slice/user-1000.slice/session-2.scope",
        ] {
            assert_eq!(at(s), Whose::Stranger, "{s}");
        }
        for l in ["/demo", "/user.slice/mine", "/my-app/hog"] {
            assert_eq!(at(l), Whose::Learner, "{l}");
        }
        assert_eq!(at("/user.slice/nslab/oom"), Whose::Nslab);
        let recorded = Recorded {
            cgroups: vec!["/sys/fs/cgroup/memory/elsewhere".into()],
            ..Recorded::default()
        };
        assert_eq!(
            cgroup(
                "/elsewhere",
                Path::new("/sys/fs/cgroup/memory/elsewhere"),
                &recorded
            ),
            Whose::Nslab
        );
    }

    #[test]
    fn sysv_objects_are_nslabs_their_running_creators_or_the_learners() {
        let table = vec![p(1, 0, "init"), p(30, 1, "postgres"), p(40, 1, "nslab")];
        let recorded = Recorded {
            pids: vec![40],
            ..Recorded::default()
        };
        let at = |key, creator| sysv_object(&table, key, creator, &recorded);
        assert_eq!(at(0x6e73_0001, 99), Whose::Nslab, "nslab's key");
        assert_eq!(at(7, 40), Whose::Nslab, "made by nslab");
        assert_eq!(at(7, 30), Whose::Stranger, "a running service's");
        assert_eq!(at(7, 99), Whose::Learner, "its maker (ipcmk) has exited");
    }

    #[test]
    fn overlays_are_nslabs_the_learners_or_a_containers() {
        let at = |line: &str| mount(&crate::kernel::mountinfo::parse(line)[0]);
        assert_eq!(
            at("70 27 0:41 / /root/lab/merged rw - overlay none rw,lowerdir=/root/lab/a:/root/lab/b,upperdir=/root/lab/u,workdir=/root/lab/w"),
            Whose::Learner
        );
        assert_eq!(
            at("71 27 0:42 / /var/lib/docker/overlay2/9f/merged rw - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B,upperdir=/var/lib/docker/overlay2/9f/diff,workdir=/var/lib/docker/overlay2/9f/work"),
            Whose::Stranger
        );
        assert_eq!(
            at("72 27 0:43 / / rw - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs,upperdir=/var/lib/containerd/x/fs,workdir=/var/lib/containerd/x/work"),
            Whose::Stranger,
            "a container's root, seen from inside it"
        );
        assert_eq!(
            at("73 27 0:44 / /home/ana/.local/share/containers/storage/overlay/1/merged rw - overlay overlay rw,lowerdir=/home/ana/.local/share/containers/storage/overlay/l/Z"),
            Whose::Stranger
        );
        assert_eq!(
            at("74 27 0:45 / /var/tmp/nslab-mount-1-2/overlay/merged rw - overlay none rw,lowerdir=/var/tmp/nslab-mount-1-2/overlay/lower1:/var/tmp/nslab-mount-1-2/overlay/lower2"),
            Whose::Nslab
        );
    }

    #[test]
    fn named_network_namespaces() {
        let recorded = Recorded {
            netns: vec!["box".into()],
            ..Recorded::default()
        };
        assert_eq!(netns("nslab-red", &Recorded::default()), Whose::Nslab);
        assert_eq!(netns("box", &recorded), Whose::Nslab);
        assert_eq!(netns("red", &recorded), Whose::Learner);
    }
}
