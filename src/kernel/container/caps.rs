//! Capabilities: their names, the set a container keeps, and how PID 1 gives up the rest
//! (with no_new_privs) just before it executes the command.
//!
//! The default is runc's (`runc spec`): CAP_AUDIT_WRITE, CAP_KILL and
//! CAP_NET_BIND_SERVICE. It is the smallest set a common program needs (signal its own
//! children, bind a port below 1024, write an audit record from `login`-like tools), and
//! it leaves root inside without the capabilities that reach the host's kernel. Docker's
//! default adds eleven more, among them CAP_MKNOD, CAP_CHOWN, CAP_DAC_OVERRIDE,
//! CAP_SETUID and CAP_SYS_CHROOT: with CAP_MKNOD a container can make a node for the
//! host's disk, and Docker relies on a device cgroup (an allow-list of devices) to make
//! such a node useless. nslab makes no device cgroup, so it keeps runc's set; every mount
//! but /dev's is `nodev` as well, so a node made with `--cap-add CAP_MKNOD` still opens
//! nothing.
//!
//! As runc does, the inheritable set is left empty (CVE-2022-24769: an inheritable set
//! lets a program with file capabilities gain them across execve), and so is the ambient
//! set, which may hold only what is inheritable. Root's execve makes the permitted and
//! effective sets equal to the bounding set, so the three show the same capabilities.

use super::{failure, traced, StartError};
use nix::errno::Errno;

use crate::kernel::ids::{cap_names, CAP_NAMES};

/// Every capability nslab knows by name.
pub const ALL: u64 = (1 << CAP_NAMES.len()) - 1;

const fn bit(cap: usize) -> u64 {
    1 << cap
}

/// runc's default set: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
pub const DEFAULT: u64 = bit(29) | bit(5) | bit(10);

/// The number of a capability named `CAP_SYS_ADMIN`, `sys_admin` or `SYS_ADMIN`.
pub fn number(name: &str) -> Option<usize> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAP_NAMES.iter().position(|n| n.eq_ignore_ascii_case(&full))
}

/// The names of the capabilities in `mask`, in number order, as runc and Docker write
/// them (`CAP_KILL`; an unnamed one as `cap_N`).
pub fn names(mask: u64) -> Vec<String> {
    cap_names(mask)
        .into_iter()
        .map(|n| {
            if n[4..].parse::<u32>().is_ok() {
                n
            } else {
                n.to_ascii_uppercase()
            }
        })
        .collect()
}

/// `default`, with `add` then `drop` applied (each a list of names; `ALL` for every one).
/// An unknown name is returned as the error.
pub fn adjust(default: u64, add: &[String], drop: &[String]) -> Result<u64, String> {
    let mask_of = |list: &[String]| -> Result<u64, String> {
        list.iter().try_fold(0u64, |m, n| {
            if n.trim().eq_ignore_ascii_case("all") {
                return Ok(ALL);
            }
            number(n).map(|c| m | bit(c)).ok_or_else(|| n.clone())
        })
    };
    Ok((default | mask_of(add)?) & !mask_of(drop)?)
}

/// A process's five capability sets, as /proc/PID/status shows them (hex masks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
    /// `NoNewPrivs: 1`.
    pub no_new_privs: bool,
}

/// The sets from /proc/PID/status text.
pub fn parse_status(text: &str) -> Sets {
    let mut s = Sets::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let hex = || u64::from_str_radix(value.trim(), 16).unwrap_or(0);
        match key {
            "CapInh" => s.inheritable = hex(),
            "CapPrm" => s.permitted = hex(),
            "CapEff" => s.effective = hex(),
            "CapBnd" => s.bounding = hex(),
            "CapAmb" => s.ambient = hex(),
            "NoNewPrivs" => s.no_new_privs = value.trim() == "1",
            _ => {}
        }
    }
    s
}

/// The capability sets of process `pid`, read now.
pub fn of_pid(pid: i32) -> anyhow::Result<Sets> {
    let path = format!("/proc/{pid}/status");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
    Ok(parse_status(&text))
}

fn prctl(call: String, option: libc::c_int, arg: libc::c_ulong) -> Result<(), StartError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(option, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    traced("prctl", call, Errno::result(r).map(drop))
}

/// In PID 1, last before execve: no_new_privs, then every capability outside `keep`
/// dropped from the bounding set, then the permitted and effective sets cut to `keep`,
/// the inheritable and ambient sets emptied.
pub fn give_up(keep: u64) -> Result<(), StartError> {
    prctl(
        "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)".into(),
        libc::PR_SET_NO_NEW_PRIVS,
        1,
    )?;
    // Up to the kernel's last capability: it answers EINVAL past it.
    let mut dropped = 0;
    let mut last = 0;
    for cap in 0..64usize {
        if keep & bit(cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(r) {
            Ok(_) => {
                dropped += 1;
                last = cap;
            }
            Err(Errno::EINVAL) => break,
            Err(e) => {
                return Err(failure(
                    "prctl",
                    format!(
                        "PR_CAPBSET_DROP of {}: {}",
                        names(bit(cap)).join(""),
                        e.desc()
                    ),
                    Some(e),
                ))
            }
        }
    }
    crate::kernel::trace::syscall(format!(
        "prctl(PR_CAPBSET_DROP, 0..{last}, 0, 0, 0) = 0   (x{dropped}: all but {})",
        names(keep).join(", ")
    ));
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3: two 32-bit words
        pid: 0,
    };
    // What PID 1 has itself bounds what it can keep (`--cap-add ALL` on a host whose own
    // bounding set lacks one): capset refuses to add.
    let mut now = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a version 3 header and room for the two data words it describes.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, now.as_mut_ptr()) };
    let had = traced(
        "capget",
        "capget({_LINUX_CAPABILITY_VERSION_3, 0}, …)".into(),
        Errno::result(r).map(drop),
    )
    .map(|_| u64::from(now[0].permitted) | (u64::from(now[1].permitted) << 32))?;
    let keep = keep & had;
    let word = |i: u32| Data {
        effective: (keep >> (32 * i)) as u32,
        permitted: (keep >> (32 * i)) as u32,
        inheritable: 0,
    };
    let data = [word(0), word(1)];
    // SAFETY: a version 3 header and the two data words it describes.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    let hex = format!("{keep:#x}");
    traced(
        "capset",
        format!(
            "capset({{_LINUX_CAPABILITY_VERSION_3, 0}}, {{effective={hex}, permitted={hex}, inheritable=0}})"
        ),
        Errno::result(r).map(drop),
    )?;
    prctl(
        "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)".into(),
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_s_default_is_three_capabilities() {
        assert_eq!(
            names(DEFAULT),
            ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
        );
        // As /proc/PID/status shows it inside a runc container.
        assert_eq!(format!("{DEFAULT:016x}"), "0000000020000420");
    }

    #[test]
    fn names_are_read_as_docker_and_runc_write_them() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("sys_admin"), Some(21));
        assert_eq!(number("MKNOD"), Some(27));
        assert_eq!(number("CAP_NOPE"), None);
        assert_eq!(number(""), None);
        let add = |a: &[&str], d: &[&str]| {
            let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            adjust(DEFAULT, &v(a), &v(d))
        };
        assert_eq!(add(&["mknod"], &[]), Ok(DEFAULT | bit(27)));
        assert_eq!(add(&[], &["CAP_KILL"]), Ok(bit(29) | bit(10)));
        assert_eq!(add(&["ALL"], &[]), Ok(ALL));
        assert_eq!(add(&["CAP_SYS_ADMIN"], &["all"]), Ok(0));
        assert_eq!(add(&["CAP_BOGUS"], &[]), Err("CAP_BOGUS".to_string()));
        assert_eq!(names(bit(45)), ["cap_45"]);
    }

    #[test]
    fn status_lines_are_decoded() {
        let text = "Name:\tsh\nCapInh:\t0000000000000000\nCapPrm:\t0000000020000420\n\
                    CapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n\
                    CapAmb:\t0000000000000000\nNoNewPrivs:\t1\n";
        let s = parse_status(text);
        assert_eq!(s.effective, DEFAULT);
        assert_eq!(s.bounding, DEFAULT);
        assert_eq!(s.inheritable, 0);
        assert!(s.no_new_privs);
    }
}
