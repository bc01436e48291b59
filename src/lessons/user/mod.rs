//! Lesson 8: user namespaces, done without root. Under sudo every namespace here is made by
//! a process that has become the learner first (see `kernel::userns`).

mod check;

use crate::error::Problem;
use crate::kernel::ids::{self, StatusIds};
use crate::kernel::machine;
use crate::kernel::ns::NsKind;
use crate::kernel::userns::{self, MapFile, Rootless, Who};
use crate::lesson::{run_check, Lesson, LessonInfo, Stage, Step, Table};
use crate::views;
use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use std::path::Path;

pub static INFO: LessonInfo = LessonInfo {
    number: 8,
    slug: "user",
    title: "User namespaces — root without sudo",
    summary: "root inside, you outside: uid_map, setgroups, capabilities, namespaces a user owns",
    text: include_str!("../../../lessons/08-user/lesson.md"),
    hints: include_str!("../../../lessons/08-user/hints.md"),
    solution: include_str!("../../../lessons/08-user/solution.md"),
    expected_check: include_str!("../../../lessons/08-user/expected/check.txt"),
    parent: None,
    steps: &Table::<UserLesson>::OF,
    check: run_check::<check::UserCheck>,
    needs_root: false,
    names: &[],
};

/// State carried from step to step: the user namespace of step a, mapped in step b and
/// given mount and PID namespaces in step c; step d's own with a network namespace.
struct UserLesson {
    who: Who,
    ns: Option<Rootless>,
    mapped: bool,
}

impl UserLesson {
    fn end_namespace(&mut self) -> Result<()> {
        self.mapped = false;
        match self.ns.take() {
            Some(ns) => ns.close(),
            None => Ok(()),
        }
    }

    fn create(&mut self, stage: &mut Stage) -> Result<userns::Unshared> {
        self.end_namespace()?;
        let (ns, unshared) = Rootless::create(&self.who, CloneFlags::CLONE_NEWUSER)?;
        self.ns = Some(ns);
        stage.syscalls();
        Ok(unshared)
    }

    fn ns(&mut self) -> Result<&mut Rootless> {
        self.ns.as_mut().context("no user namespace is running")
    }

    /// The three writes of `unshare --map-root-user`, from the learner's process.
    fn map_root(&mut self) -> Result<[userns::Outcome; 3]> {
        let line = |id: u32| format!("0 {id} 1");
        let (uid, gid) = (self.who.uid, self.who.gid);
        let ns = self.ns()?;
        let written = [
            ns.write_map(MapFile::UidMap, &line(uid))?,
            ns.write_map(MapFile::Setgroups, "deny")?,
            ns.write_map(MapFile::GidMap, &line(gid))?,
        ];
        self.mapped = written.iter().all(|w| w.ok);
        Ok(written)
    }

    /// Steps may be started on their own (`--step c`): make what earlier steps would have.
    fn ensure_mapped(&mut self, stage: &mut Stage) -> Result<()> {
        if self.ns.is_some() && self.mapped {
            return Ok(());
        }
        stage.say("Making the user namespace of steps a and b first, root mapped to you.");
        self.create(stage)?;
        let written = self.map_root()?;
        stage.syscalls();
        if let Some(w) = written.iter().find(|w| !w.ok) {
            anyhow::bail!("writing the maps was {}", w.said());
        }
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.ns.as_ref().map(|n| n.inside_pid()).unwrap_or(0)
    }

    /// The process inside as it sees itself, as nslab sees it, and the learner's process.
    fn ids_view(&mut self, stage: &mut Stage, title: &str) -> Result<StatusIds> {
        let ns = self.ns()?;
        let (pid, learner) = (ns.inside_pid(), ns.learner_pid());
        let inside = ns.whoami()?.status;
        let outside = userns::status_of(pid).context("the process inside has exited")?;
        let yours = userns::status_of(learner).context("the learner's process has exited")?;
        stage.view(
            title,
            &views::ids::compare(&[
                views::ids::Column {
                    label: format!("inside (PID {pid})"),
                    ids: &inside,
                },
                views::ids::Column {
                    label: "from the host".into(),
                    ids: &outside,
                },
                views::ids::Column {
                    label: format!("you (PID {learner})"),
                    ids: &yours,
                },
            ]),
        );
        Ok(inside)
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("unshare --user sh -c 'id; cat /proc/self/uid_map'");
        if nix::unistd::geteuid().is_root() {
            stage.say(&format!(
                "nslab runs as root here, so it forks a process that becomes you (UID {}, GID {}) before anything else.",
                self.who.uid, self.who.gid
            ));
        }
        let unshared = self.create(stage)?;
        let pid = self.pid();
        stage.before_after(
            &format!("The links of PID {pid} before and after unshare(CLONE_NEWUSER)"),
            &views::ns::links(&unshared.before),
            &views::ns::links(&unshared.after),
        );
        let inside = self.ids_view(stage, "Who the process is, inside and outside")?;
        let me = self.ns()?.whoami()?;
        let overflow = userns::overflow_uid().unwrap_or(65534);
        stage.view(
            &format!("/proc/{pid}/uid_map and gid_map"),
            &format!(
                "uid_map: {}\ngid_map: {}\n",
                shown(&me.uid_map),
                shown(&me.gid_map)
            ),
        );
        stage.say(&format!(
            "Only its `user` link changed. Inside, getuid() returns {} and getgid() {}: nothing is mapped yet, so \
             every ID reads as the overflow ID ({overflow}, /proc/sys/kernel/overflowuid), `nobody`. The host's /proc \
             still says UID {}: the process is yours.",
            inside.uid[0], inside.gid[0], self.who.uid
        ));
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        if self.ns.is_none() || self.mapped {
            stage.say("Making a user namespace without a map first, as in step a.");
            self.create(stage)?;
        }
        let (pid, uid, gid) = (self.pid(), self.who.uid, self.who.gid);
        stage.command(&format!(
            "echo '0 {uid} 1' > /proc/{pid}/uid_map\n\
             echo '0 {gid} 1' > /proc/{pid}/gid_map     # before setgroups is denied\n\
             echo deny > /proc/{pid}/setgroups\n\
             echo '0 {gid} 1' > /proc/{pid}/gid_map"
        ));
        let ns = self.ns()?;
        let uid_map = ns.write_map(MapFile::UidMap, &format!("0 {uid} 1"))?;
        let early = ns.write_map(MapFile::GidMap, &format!("0 {gid} 1"))?;
        let deny = ns.write_map(MapFile::Setgroups, "deny")?;
        let gid_map = ns.write_map(MapFile::GidMap, &format!("0 {gid} 1"))?;
        self.mapped = uid_map.ok && deny.ok && gid_map.ok;
        stage.syscalls();
        stage.say(&format!(
            "uid_map: {}. gid_map while setgroups was still allowed: {}. setgroups: {}. gid_map then: {}.",
            uid_map.said(),
            early.said(),
            deny.said(),
            gid_map.said()
        ));
        let me = self.ns()?.whoami()?;
        stage.view(
            &format!("/proc/{pid}/uid_map, gid_map and setgroups"),
            &format!(
                "uid_map:   {}\ngid_map:   {}\nsetgroups: {}\n",
                shown(&me.uid_map),
                shown(&me.gid_map),
                me.setgroups
            ),
        );
        let inside = self.ids_view(stage, "Who the process is now")?;
        stage.say(&format!(
            "Inside it is UID {} and GID {}: `id` says root. Its supplementary groups read as {} (one that is not \
             mapped would read as the overflow GID, `nogroup`).",
            inside.uid[0],
            inside.gid[0],
            inside
                .groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
        stage.command("unshare --user --map-root-user sh -c 'touch /tmp/f'; ls -ln /tmp/f");
        let file = self.ns()?.tmpfile()?;
        stage.syscalls();
        let outside = userns::owner_of_fd(pid, file.fd)
            .context("the file of the process inside cannot be seen from the host")?;
        stage.say(&format!(
            "Inside, fstat says the new file belongs to UID {} and GID {}: root. From the host, \
             `stat -L /proc/{pid}/fd/{}` says UID {} and GID {}: you. (nslab made it in {} without a name, \
             O_TMPFILE, so it goes away with the process.)",
            file.uid,
            file.gid,
            file.fd,
            outside.0,
            outside.1,
            file.dir.display()
        ));
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_mapped(stage)?;
        let pid = self.pid();
        stage.command("unshare --user --map-root-user grep CapEff /proc/self/status");
        let learner = self.ns()?.learner_pid();
        let inside = self.ns()?.whoami()?.status;
        let yours = userns::status_of(learner).context("the learner's process has exited")?;
        stage.view(
            &format!("CapEff of PID {pid}, inside its user namespace"),
            &views::ids::capabilities(inside.cap_eff),
        );
        stage.view(
            &format!("CapEff of your own process (PID {learner}), outside"),
            &views::ids::capabilities(yours.cap_eff),
        );
        let secret = ["/etc/shadow", "/root"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .unwrap_or(Path::new("/etc/shadow"));
        stage.command(&format!(
            "unshare --user --map-root-user cat {}\n\
             unshare --user --map-root-user mount -t tmpfs tmpfs /tmp",
            secret.display()
        ));
        let ns = self.ns()?;
        let read = ns.try_open(secret)?;
        let host_mount = ns.try_mount_tmpfs(Path::new("/tmp"))?;
        stage.syscalls();
        stage.say(&format!(
            "Opening {}: {}. Mounting a tmpfs in the host's mount namespace: {}. Its capabilities count only for \
             what its user namespace owns: the host's root owns that file, and the host's user namespace the mount \
             namespace.",
            secret.display(),
            read.said(),
            host_mount.said()
        ));
        stage.command("unshare --user --map-root-user --mount --pid --fork --mount-proc ps aux");
        let ns = self.ns()?;
        let own = ns.unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)?;
        let tmpfs = ns.try_mount_tmpfs(Path::new("/tmp"))?;
        let ps = if own.ok { Some(ns.pid1_ps()?) } else { None };
        stage.syscalls();
        if let Some(ps) = &ps {
            stage.view(
                "ps inside the new PID namespace, from the /proc its PID 1 mounted",
                &views::procs::table(ps),
            );
        }
        stage.say(&format!(
            "In mount and PID namespaces made inside the user namespace: a tmpfs on /tmp: {}; a /proc of its own: {}. \
             Both are seen only there, and end with it.",
            tmpfs.said(),
            match &ps {
                Some(p) => format!("done, {} process(es) listed", p.len()),
                None => own.said(),
            }
        ));
        Ok(())
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        stage.command("unshare --net ip link");
        self.ensure_mapped(stage)?;
        let ns = self.ns()?;
        let refused = ns.learner_tries_unshare(CloneFlags::CLONE_NEWNET)?;
        stage.syscalls();
        stage.say(&format!(
            "You, in the host's user namespace, making a network namespace: {}.",
            refused.said()
        ));
        stage.command("unshare --user --map-root-user --net sh -c 'ip link set lo up; ip link'");
        let ns = self.ns()?;
        let made = ns.unshare(CloneFlags::CLONE_NEWNET)?;
        stage.syscalls();
        if !made.ok {
            stage.say(&format!(
                "The same inside the user namespace: {}.",
                made.said()
            ));
            return Ok(());
        }
        let links = ns.links_up()?;
        stage.syscalls();
        stage.before_after(
            "ip link in the new network namespace, before and after `ip link set lo up`",
            &views::net::links(&links.before, &|_| None),
            &views::net::links(&links.after, &|_| None),
        );
        stage.say(&format!(
            "Inside the user namespace it works: a network namespace, and lo brought up: {}.",
            links.lo_up.said()
        ));
        let pid = self.pid();
        let me = std::process::id() as i32;
        stage.command("lsns -t net -o NS,ONS,PID,COMMAND");
        let owner = userns::owning_userns(pid, NsKind::Net)?;
        let host_owner = userns::owning_userns(me, NsKind::Net)?;
        stage.syscalls();
        let its_user = self.ns()?.whoami()?.user_ns;
        let my_user = crate::kernel::ns::link(me, NsKind::User).inode;
        stage.view(
            "Which user namespace owns each network namespace",
            &views::table::render(
                &[
                    "NETWORK NAMESPACE OF",
                    "OWNER (NS_GET_USERNS)",
                    "ITS OWN USER NAMESPACE",
                ],
                &[
                    vec![
                        format!("the process inside (PID {pid})"),
                        format!("user:[{owner}]"),
                        its_user
                            .map(|i| format!("user:[{i}]"))
                            .unwrap_or("-".into()),
                    ],
                    vec![
                        format!("nslab (PID {me})"),
                        format!("user:[{host_owner}]"),
                        my_user.map(|i| format!("user:[{i}]")).unwrap_or("-".into()),
                    ],
                ],
            ),
        );
        stage.say(&format!(
            "The new network namespace is owned by {} user namespace; the host's by {}. Capabilities held in a user \
             namespace count for the namespaces it owns.",
            if Some(owner) == its_user { "the process's own" } else { "another" },
            if Some(host_owner) == my_user { "the host's (nslab's own)" } else { "another" }
        ));
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        self.end_namespace()?;
        let who = self.who.clone();
        let name = who.name.clone().unwrap_or_else(|| who.uid.to_string());
        stage.command(&format!("grep '^{name}:' /etc/subuid /etc/subgid"));
        let (subuid, subgid) = userns::subordinate_ranges(&who);
        let lines = userns::subuid_lines();
        stage.view(
            "/etc/subuid",
            &if lines.is_empty() {
                "(absent or empty)\n".to_string()
            } else {
                lines.join("\n") + "\n"
            },
        );
        let tools: Vec<&str> = ["newuidmap", "newgidmap"]
            .into_iter()
            .filter(|t| machine::which(t).is_none())
            .collect();
        match (subuid.first(), subgid.first(), tools.is_empty()) {
            (Some(u), Some(g), true) => self.map_subordinate(stage, *u, *g)?,
            _ => {
                let mut missing = Vec::new();
                if subuid.is_empty() || subgid.is_empty() {
                    missing.push(format!(
                        "no range for {name} in /etc/subuid and /etc/subgid"
                    ));
                }
                if !tools.is_empty() {
                    missing.push(format!(
                        "{} not installed (the uidmap package)",
                        tools.join(" and ")
                    ));
                }
                stage.say(&format!(
                    "Not done here: {}. With a line `{name}:100000:65536` in both files, \
                     `newuidmap PID 0 {} 1 1 100000 65536` would write two lines to uid_map, `0 {} 1` and \
                     `1 100000 65536`: root inside is you, UIDs 1 to 65536 inside are 100000 to 165535 outside.",
                    missing.join("; "),
                    who.uid,
                    who.uid
                ));
            }
        }
        match lines.iter().find(|l| l.starts_with("dockremap:")) {
            Some(l) => stage.say(&format!(
                "Docker's userns-remap uses the line `{l}`: root in its containers is UID {} outside.",
                l.split(':').nth(1).unwrap_or("?")
            )),
            None => stage.say(
                "Docker's userns-remap (`\"userns-remap\": \"default\"` in /etc/docker/daemon.json) adds a user \
                 `dockremap` and a line such as `dockremap:165536:65536`: root in its containers is then UID 165536 \
                 outside, and files a container's root makes belong to 165536 on the host.",
            ),
        }
        Ok(())
    }

    /// The learner's process maps root to the learner and 1… to their first subordinate
    /// range with newuidmap and newgidmap, as rootless Podman does.
    fn map_subordinate(
        &mut self,
        stage: &mut Stage,
        u: ids::SubRange,
        g: ids::SubRange,
    ) -> Result<()> {
        self.create(stage)?;
        let (pid, uid, gid) = (self.pid(), self.who.uid, self.who.gid);
        let count = |n: u32| n.min(65536);
        let uid_args = format!("{pid} 0 {uid} 1 1 {} {}", u.start, count(u.count));
        let gid_args = format!("{pid} 0 {gid} 1 1 {} {}", g.start, count(g.count));
        stage.command(&format!("newuidmap {uid_args}\nnewgidmap {gid_args}"));
        let split = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let ns = self.ns()?;
        let mu = ns.run_id_tool("newuidmap", &split(&uid_args))?;
        let mg = ns.run_id_tool("newgidmap", &split(&gid_args))?;
        stage.say(&format!(
            "newuidmap: {}. newgidmap: {}.",
            mu.said(),
            mg.said()
        ));
        stage.view(
            &format!("/proc/{pid}/uid_map and gid_map, as the host reads them"),
            &format!(
                "uid_map:\n{}gid_map:\n{}",
                userns::map_of(pid, MapFile::UidMap).unwrap_or_default(),
                userns::map_of(pid, MapFile::GidMap).unwrap_or_default()
            ),
        );
        self.end_namespace()
    }
}

/// A map file's text on one line, or `(empty)`.
fn shown(map: &str) -> String {
    let lines: Vec<String> = map
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "(empty: nothing mapped)".into()
    } else {
        lines.join("; ")
    }
}

impl Lesson for UserLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "unshare(CLONE_NEWUSER) without a map",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "uid_map, gid_map and setgroups",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "Capabilities inside and outside",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "A user namespace owns the namespaces made with it",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "Subordinate IDs: many IDs for one user",
            keyboard: false,
            run: Self::step_e,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        let who = userns::learner().ok_or_else(|| {
            Problem::environment(
                "lesson 8 shows what a user without privileges can do, and root with no one behind it \
                 (no SUDO_UID) is not such a user",
                "run it as your own user: nslab lesson 8 (under sudo it acts as the user who ran sudo)",
            )
        })?;
        if let Err(why) = userns::unprivileged_allowed() {
            return Err(Problem::environment(
                format!("this machine does not let users without privileges make user namespaces: {why}"),
                "allow them (as root): sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 \
                 (on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0); `nslab doctor` checks this",
            ));
        }
        Ok(UserLesson {
            who,
            ns: None,
            mapped: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_shown_on_one_line() {
        assert_eq!(shown(""), "(empty: nothing mapped)");
        assert_eq!(
            shown("         0       1000          1\n         1     100000      65536\n"),
            "0 1000 1; 1 100000 65536"
        );
    }
}
