//! `nslab run`: the small container runtime lesson 5 builds, usable on its own.
//!
//! A root filesystem (built from the host, or `--rootfs DIR`), a cgroup with the limits
//! asked for, then [`crate::kernel::container::start`]; the command's exit status is passed on and
//! everything is torn down afterwards, also on an error or Ctrl-C (and by `nslab cleanup`
//! after `kill -9`). The container's own mounts live in its private mount namespace and go
//! with it.

use crate::error::{Problem, EXIT_SIGNALLED};
use crate::kernel::cgroup::{concepts, CgDir, Concept, CpuQuota, Max, NslabCgroup, Reading};
use crate::kernel::container::{self, caps, Spec, StartError};
use crate::kernel::net::uplink::RunNetwork;
use crate::kernel::rootfs::Rootfs;
use crate::kernel::trace;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// What `nslab run` was asked for, as typed.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub rootfs: Option<PathBuf>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids: Option<String>,
    pub hostname: Option<String>,
    pub net: bool,
    /// `--cap-add`, `--cap-drop`: names, as typed.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Print the system calls made, as strace would, on stderr.
    pub trace: bool,
    pub command: Vec<String>,
}

/// Resource limits, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// CPU quota per period, in microseconds, with the period (100 ms).
    pub cpu_quota_us: Option<u64>,
    pub pids: Option<u64>,
}

/// The CFS period nslab uses with a CPU quota: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The largest `--memory`: 1 TiB, more than the machines lessons run on, far below the
/// point where the kernel's page arithmetic would treat it as "max".
pub const MAX_MEMORY: u64 = 1 << 40;

/// The largest `--pids`: the kernel's own ceiling on PIDs (PID_MAX_LIMIT on 64 bits).
pub const MAX_PIDS: u64 = 4 * 1024 * 1024;

/// `100M`, `1G`, `512k`, `100MiB`, `4096` (bytes), as the cgroup layer reads sizes.
pub fn parse_memory(text: &str) -> Result<u64> {
    let fix = "give a size such as 100M, 512M or 1G (at least 1M, at most 1T)";
    let bytes = concepts::parse_size(text)
        .map_err(|e| Problem::usage(format!("--memory {text}: {e:#}"), fix))?;
    if bytes < (1 << 20) {
        return Err(Problem::usage(
            format!("--memory {text}: too small for a container to start"),
            fix,
        ));
    }
    if bytes > MAX_MEMORY {
        return Err(Problem::usage(
            format!("--memory {text}: larger than 1 TiB, which is no limit at all here"),
            fix,
        ));
    }
    Ok(bytes)
}

/// `0.5` CPUs → 50 ms of CPU time per 100 ms period.
pub fn parse_cpus(text: &str) -> Result<u64> {
    let fix = "give a number of CPUs such as 0.5 (half a CPU) or 2, at least 0.01";
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| Problem::usage(format!("--cpus {text}: not a number"), fix))?;
    if !cpus.is_finite() || !(0.01..=1024.0).contains(&cpus) {
        return Err(Problem::usage(format!("--cpus {text}: out of range"), fix));
    }
    Ok((cpus * CPU_PERIOD_US as f64).round() as u64)
}

/// A number of processes (tasks), at least 1.
pub fn parse_pids(text: &str) -> Result<u64> {
    let fix = "give a whole number of processes, at least 1, such as 50 (at most 4194304)";
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::usage(
            format!("--pids {text}: not a number of processes"),
            fix,
        ));
    }
    match t.parse::<u64>() {
        Ok(0) => Err(Problem::usage(
            format!("--pids {text}: a container needs at least one process"),
            fix,
        )),
        Ok(n) if n <= MAX_PIDS => Ok(n),
        _ => Err(Problem::usage(
            format!("--pids {text}: more processes than the kernel can number"),
            fix,
        )),
    }
}

impl RunArgs {
    pub fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            memory_bytes: self.memory.as_deref().map(parse_memory).transpose()?,
            cpu_quota_us: self.cpus.as_deref().map(parse_cpus).transpose()?,
            pids: self.pids.as_deref().map(parse_pids).transpose()?,
        })
    }

    /// The capabilities the command keeps: runc's default, `--cap-add`, then `--cap-drop`.
    pub fn capabilities(&self) -> Result<u64> {
        caps::adjust(caps::DEFAULT, &self.cap_add, &self.cap_drop).map_err(|name| {
            Problem::usage(
                format!("{name:?} is not a capability"),
                "name one such as CAP_NET_RAW or NET_RAW, or ALL (the list: man 7 capabilities)",
            )
        })
    }

    pub fn hostname(&self) -> Result<String> {
        let name = self.hostname.clone().unwrap_or_else(|| "nslab".into());
        if !container::valid_hostname(&name) {
            return Err(Problem::usage(
                format!("--hostname {name:?} is not a valid hostname"),
                "use letters, digits and '-' (dots between labels), at most 64 characters",
            ));
        }
        Ok(name)
    }
}

/// `nslab run`: returns the command's exit status.
pub fn run(args: &RunArgs) -> Result<i32> {
    // Validate everything before touching the system: a bad flag changes nothing.
    let limits = args.limits()?;
    let hostname = args.hostname()?;
    let capabilities = args.capabilities()?;
    if args.command.is_empty() {
        return Err(Problem::usage(
            "no command to run",
            "put it after --:  sudo nslab run -- /bin/sh",
        ));
    }
    crate::error::require_root("nslab run", "nslab run -- CMD")?;
    trace::take();
    trace::keep(args.trace);
    let result = run_inner(args, &limits, &hostname, capabilities);
    if args.trace {
        print_trace();
    }
    // Whatever happened, nothing stays (the guards have done it; this catches the rest).
    for (r, why) in crate::kernel::removal::teardown() {
        note(&format!(
            "could not remove {}: {why}; `sudo nslab cleanup` will retry",
            r.describe()
        ));
    }
    match result {
        Err(e) if ending_signal(&e).is_some() => {
            let signal = ending_signal(&e).unwrap_or(libc::SIGINT);
            note(&format!(
                "{}; the container and everything it used have been removed",
                crate::error::ending(signal)
            ));
            Ok(EXIT_SIGNALLED.saturating_add(signal))
        }
        Err(e) => match e.downcast_ref::<StartError>() {
            // As a shell reports it: 127 not found, 126 found but not runnable.
            Some(se) if se.step == "execve" => {
                note(&se.error.to_string());
                Ok(if se.command_not_found() { 127 } else { 126 })
            }
            _ => Err(e),
        },
        ok => ok,
    }
}

fn print_trace() {
    for line in trace::take() {
        let _ = writeln!(std::io::stderr(), "  {line}");
    }
}

/// A line to stderr that cannot fail the run: after a closed terminal, writes fail (EIO),
/// and the teardown must go on.
fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "nslab: {message}");
}

/// The signal that ended the run, if that is what `e` is.
fn ending_signal(e: &anyhow::Error) -> Option<i32> {
    match e.downcast_ref::<Problem>() {
        Some(Problem::Interrupted { signal }) => Some(*signal),
        _ => None,
    }
}

fn run_inner(args: &RunArgs, limits: &Limits, hostname: &str, capabilities: u64) -> Result<i32> {
    // Declared in creation order, so they are dropped (removed) in reverse.
    let rootfs = match &args.rootfs {
        Some(dir) => Rootfs::given(dir)?,
        None => Rootfs::build()?,
    };
    let mut cgroup = None;
    let mut spec = Spec::new(&rootfs.path, &args.command).with_hostname(hostname);
    spec.capabilities = capabilities;
    spec.init = true;
    spec.cgroup_controllers = limited_controllers(limits)
        .into_iter()
        .map(String::from)
        .collect();
    let network = if args.net {
        Some(prepare_network()?)
    } else {
        None
    };
    spec.join_netns = network.as_ref().map(|n| n.nsfd());
    let mut c = container::start_with(&spec, || {
        cgroup = make_cgroup(limits)?;
        Ok(cgroup
            .as_ref()
            .map(|cg| limited_dirs(cg).iter().map(|d| d.path.clone()).collect())
            .unwrap_or_default())
    })?;
    let code = c.wait()?;
    drop(c);
    // What cannot be removed here stays on the ledger: `run` retries it and reports it,
    // and the command's exit status is passed on all the same.
    if let Some(n) = network {
        let _ = n.remove();
    }
    drop(cgroup);
    let _ = rootfs.remove();
    Ok(code)
}

/// `--net`: the container's network namespace, wired to the host before it starts.
fn prepare_network() -> Result<RunNetwork> {
    use crate::kernel::net::nat;
    RunNetwork::create(&std::process::id().to_string()).map_err(|e| {
        if nat::is_unsupported(&e) {
            Problem::environment(
                format!("--net needs NAT through nftables, which this kernel lacks: {e:#}"),
                nat::UNSUPPORTED_FIX,
            )
        } else {
            e
        }
    })
}

/// The run's cgroup, with only the controllers whose limits were asked for.
fn make_cgroup(limits: &Limits) -> Result<Option<NslabCgroup>> {
    let controllers = limited_controllers(limits);
    if controllers.is_empty() {
        return Ok(None);
    }
    let cg = NslabCgroup::create_exact(&format!("run-{}", std::process::id()), &controllers)?;
    apply_limits(&cg, limits)?;
    Ok(Some(cg))
}

/// The controllers that hold the limits asked for.
fn limited_controllers(limits: &Limits) -> Vec<&'static str> {
    [
        (limits.memory_bytes.is_some(), "memory"),
        (limits.cpu_quota_us.is_some(), "cpu"),
        (limits.pids.is_some(), "pids"),
    ]
    .into_iter()
    .filter_map(|(asked, c)| asked.then_some(c))
    .collect()
}

/// Put a container into `cg` (its directories whose controllers hold a limit).
pub fn put_in(spec: &mut Spec, cg: &NslabCgroup) {
    spec.cgroup_dirs = limited_dirs(cg).iter().map(|d| d.path.clone()).collect();
}

const LIMITED: [&str; 3] = ["memory", "cpu", "pids"];

/// The directories whose controllers hold a limit. On v1, `cpuacct` (made beside `cpu`
/// for usage figures) is not joined: every join is a cgroup migration, which waits for
/// an RCU grace period, and it limits nothing.
fn limited_dirs(cg: &NslabCgroup) -> Vec<&CgDir> {
    cg.cgroup
        .dirs
        .iter()
        .filter(|d| d.controllers.iter().any(|c| LIMITED.contains(&c.as_str())))
        .collect()
}

/// Write each limit to the file of this machine's cgroup version (in the trace).
pub fn apply_limits(cg: &NslabCgroup, limits: &Limits) -> Result<()> {
    if let Some(b) = limits.memory_bytes {
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(b)))?;
    }
    if let Some(q) = limits.cpu_quota_us {
        let quota = CpuQuota {
            quota_us: Some(q),
            period_us: CPU_PERIOD_US,
        };
        cg.set(Concept::CpuQuota, &Reading::CpuQuota(quota))?;
    }
    if let Some(n) = limits.pids {
        cg.set(Concept::PidsLimit, &Reading::Limit(Max::Value(n)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_memory("100M").unwrap(), 100 << 20);
        assert_eq!(parse_memory("100m").unwrap(), 100 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("2048k").unwrap(), 2 << 20);
        assert_eq!(parse_memory("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_memory("10485760").unwrap(), 10 << 20);
        for bad in ["", "abc", "10X", "-1M", "100", "99999999999999999999G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_cpus_and_pids() {
        assert_eq!(parse_cpus("0.5").unwrap(), 50_000);
        assert_eq!(parse_cpus("2").unwrap(), 200_000);
        assert_eq!(parse_cpus("0.1").unwrap(), 10_000);
        for bad in ["0", "-1", "x", "NaN", "inf", "0.001"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pids("50").unwrap(), 50);
        assert_eq!(parse_pids("4194304").unwrap(), MAX_PIDS);
        for bad in [
            "0",
            "-3",
            "ten",
            "1.5",
            "",
            "4194305",
            "18446744073709551616",
        ] {
            assert!(parse_pids(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn huge_numbers_are_refused_not_wrapped() {
        assert_eq!(parse_memory("1T").unwrap(), MAX_MEMORY);
        for bad in [
            "18446744073709551615",
            "18446744073709551616",
            "2T",
            "17179869184G",
            "1e30",
            "99999999999999999999999T",
        ] {
            let e = parse_memory(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_code_of(&e),
                crate::error::EXIT_USAGE,
                "{bad}"
            );
        }
        for bad in ["1025", "1e9", "18446744073709551615"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let a = RunArgs {
            memory: Some("lots".into()),
            command: vec!["true".into()],
            ..Default::default()
        };
        let e = run(&a).unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), crate::error::EXIT_USAGE);
        let a = RunArgs {
            hostname: Some("no spaces".into()),
            command: vec!["true".into()],
            ..Default::default()
        };
        assert_eq!(
            crate::error::exit_code_of(&run(&a).unwrap_err()),
            crate::error::EXIT_USAGE
        );
        for (add, drop) in [(vec!["CAP_NOPE"], vec![]), (vec![], vec!["sys-admin"])] {
            let a = RunArgs {
                cap_add: add.into_iter().map(String::from).collect(),
                cap_drop: drop.into_iter().map(String::from).collect(),
                command: vec!["true".into()],
                ..Default::default()
            };
            let e = run(&a).unwrap_err();
            assert_eq!(crate::error::exit_code_of(&e), crate::error::EXIT_USAGE);
            assert!(format!("{e:#}").contains("not a capability"), "{e:#}");
        }
    }

    proptest::proptest! {
        /// Whatever a learner types, a value inside the documented bounds or a usage error.
        #[test]
        fn typed_sizes_and_counts_are_bounded_or_refused(text in "[0-9.eE+-]{0,24}[kKmMgGtTiB]{0,3}|.{0,24}") {
            if let Ok(bytes) = parse_memory(&text) {
                proptest::prop_assert!(((1 << 20)..=MAX_MEMORY).contains(&bytes), "{}: {}", text, bytes);
            }
            if let Ok(quota) = parse_cpus(&text) {
                proptest::prop_assert!((1_000..=1024 * CPU_PERIOD_US).contains(&quota), "{}: {}", text, quota);
            }
            if let Ok(pids) = parse_pids(&text) {
                proptest::prop_assert!((1..=MAX_PIDS).contains(&pids), "{}: {}", text, pids);
            }
        }
    }
}
