//! Root acting with a learner's file rights, where the learner could plant a symlink.

/// Run `f` with the file system rights of `uid`/`gid` (fsuid, fsgid and no other groups),
/// then give root's back: nslab as root reading or writing where a learner could plant a
/// symlink. A no-op unless nslab is root acting for another user. nslab has one thread when
/// it calls this, so the rights are the process's for that moment.
pub fn with_file_rights_of<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    use nix::unistd::{getgroups, setfsgid, setfsuid, setgroups, Gid, Uid};
    if !nix::unistd::geteuid().is_root() || uid == 0 {
        return f();
    }
    let groups = getgroups().unwrap_or_default();
    // Root's own groups would still open files of group root.
    let dropped = setgroups(&[Gid::from_raw(gid)]).is_ok();
    let old_gid = setfsgid(Gid::from_raw(gid));
    let old_uid = setfsuid(Uid::from_raw(uid));
    let r = f();
    setfsuid(old_uid);
    setfsgid(old_gid);
    if dropped {
        let _ = setgroups(&groups);
    }
    r
}
