//! How strace spells flags and results, for the trace.

use nix::errno::Errno;

/// `CLONE_NEWPID|CLONE_NEWNS` for a set of flags.
pub fn clone_flag_names(flags: nix::sched::CloneFlags) -> String {
    use nix::sched::CloneFlags as F;
    let table = [
        (F::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (F::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (F::CLONE_NEWNS, "CLONE_NEWNS"),
        (F::CLONE_NEWNET, "CLONE_NEWNET"),
        (F::CLONE_NEWPID, "CLONE_NEWPID"),
        (F::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (F::CLONE_NEWUTS, "CLONE_NEWUTS"),
    ];
    let names: Vec<&str> = table
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    names.join("|")
}

/// `0` or `-1 EPERM (Operation not permitted)`, as strace prints results.
pub fn errno_result<T>(r: &nix::Result<T>) -> String {
    match r {
        Ok(_) => "0".into(),
        Err(e) => format!("-1 {}", errno_text(*e)),
    }
}

/// `ENOMEM (Cannot allocate memory)`: the name and the C library's message, as strace.
pub fn errno_text(e: Errno) -> String {
    let message = std::io::Error::from_raw_os_error(e as i32).to_string();
    let message = message
        .split(" (os error")
        .next()
        .unwrap_or(&message)
        .to_string();
    format!("{e:?} ({message})")
}
