//! An ordinary user for the tests of what needs no root (lesson 8): one the machine has
//! (the first with a UID from 1000), or `nobody`; and whether such a user may make user
//! namespaces here.

use std::process::Command;

/// A user without privileges, its UID and primary GID.
#[derive(Clone, Copy, Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// The `setpriv` words that run what follows as this user, with no other groups.
    pub fn setpriv(&self) -> Vec<String> {
        vec![
            "setpriv".into(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
        ]
    }

    /// `cmd`, run as this user when the test runs as root.
    pub fn command(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        // std drops root's supplementary groups (setgroups(0)) when it sets the UID.
        cmd.uid(self.uid).gid(self.gid);
    }
}

fn number(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// An ordinary user who can make user namespaces and run this build of nslab, or why not.
pub fn user() -> Result<User, String> {
    if number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err("user.max_user_namespaces is 0: no user namespaces for ordinary users".into());
    }
    if number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    if number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Err("kernel.apparmor_restrict_unprivileged_userns is 1".into());
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let found = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let uid: u32 = f.get(2)?.parse().ok()?;
        let gid: u32 = f.get(3)?.parse().ok()?;
        ((1000..65534).contains(&uid)).then_some(User { uid, gid })
    });
    let user = found.unwrap_or(User {
        uid: 65534,
        gid: 65534,
    });
    // The user must reach this build (a checkout under a private home may not be) and be
    // let into a user namespace with a map and a /proc of its own.
    let mut probe = Command::new("setpriv");
    probe.args(&user.setpriv()[1..]).args([
        "unshare",
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
        super::bin(),
        "--version",
    ]);
    match probe.output() {
        Ok(o) if o.status.success() => Ok(user),
        Ok(o) => Err(format!(
            "UID {} cannot run nslab in a user namespace of its own here: {}",
            user.uid,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("setpriv (util-linux) cannot run: {e}")),
    }
}
