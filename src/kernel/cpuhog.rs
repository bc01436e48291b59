//! A CPU hog: a forked child that spins, and what the kernel says about CPU time.
//!
//! The hog is placed in its cgroup (and pinned to a CPU, when asked) *before* it spins: it
//! waits for a `start` order that the parent sends only after writing its PID to
//! `cgroup.procs`. While spinning it notes the longest gap between two looks at the clock —
//! the time the scheduler kept it off the CPU — in a page shared with the parent, because a
//! spinning process cannot stop to answer on a pipe.

use super::sys::{self, ChildIo, Forked};
use super::trace;
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the hog and nslab share: written by the hog, read (and reset) by nslab.
#[repr(C)]
struct Shared {
    /// Longest time off the CPU since the last [`CpuHog::take_longest_stall`], in ns.
    longest_gap_ns: AtomicU64,
}

/// One anonymous page mapped shared before fork, so parent and child see the same memory.
struct SharedPage {
    ptr: *mut Shared,
}

impl SharedPage {
    fn new() -> Result<SharedPage> {
        // SAFETY: a fresh anonymous mapping; checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap of the hog's shared page");
        }
        // Zeroed by the kernel: a valid `Shared` of zeros.
        Ok(SharedPage {
            ptr: p as *mut Shared,
        })
    }

    fn get(&self) -> &Shared {
        // SAFETY: the mapping lives as long as `self`, and `Shared` is only atomics.
        unsafe { &*self.ptr }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in `new`; no references outlive `self`.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, 4096);
        }
    }
}

/// A running (or ready) CPU hog.
pub struct CpuHog {
    child: Forked,
    shared: SharedPage,
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The child: report ready, wait for `start`, then spin until killed.
fn hog_body(io: &mut ChildIo, shared: &Shared) -> i32 {
    io.send(&"ready");
    if io.wait_order().as_deref() != Some("start") {
        return 1;
    }
    let mut last = monotonic_ns();
    loop {
        let now = monotonic_ns();
        let gap = now - last;
        last = now;
        // Gaps under 50 µs are the loop itself and timer ticks, not the scheduler's doing.
        if gap > 50_000 {
            shared.longest_gap_ns.fetch_max(gap, Ordering::Relaxed);
        }
    }
}

impl CpuHog {
    /// Fork a hog that waits, doing nothing, until [`CpuHog::start_in`].
    pub fn spawn() -> Result<CpuHog> {
        let shared = SharedPage::new()?;
        let ptr = shared.ptr as usize;
        let mut child = sys::fork_recorded(move |io| {
            // SAFETY: the shared page is mapped in the child too (inherited across fork).
            let s = unsafe { &*(ptr as *const Shared) };
            hog_body(io, s)
        })?;
        let msg: String = child
            .recv(Duration::from_secs(10))
            .context("waiting for the CPU hog to start")?;
        if msg != "ready" {
            bail!("the CPU hog sent {msg:?} instead of ready");
        }
        Ok(CpuHog { child, shared })
    }

    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    /// Place the hog in `cg` (`echo PID > cgroup.procs`, in the trace), then let it spin.
    pub fn start_in(&mut self, cg: &super::cgroup::Cgroup) -> Result<()> {
        self.start_pinned_in(cg, None)
    }

    /// Place the hog in `cg`, pin it to `cpu` if given, then let it spin. Pinning comes
    /// after the move: joining a cgroup with the cpuset controller (v2 often has it) resets
    /// a process's CPU affinity to the cgroup's CPUs.
    pub fn start_pinned_in(
        &mut self,
        cg: &super::cgroup::Cgroup,
        cpu: Option<usize>,
    ) -> Result<()> {
        cg.add_pid(self.pid())?;
        if let Some(cpu) = cpu {
            pin_to_cpu(self.pid(), cpu)?;
        }
        self.child.order("start")?;
        Ok(())
    }

    /// The longest time the hog was kept off the CPU since the last call (then reset).
    pub fn take_longest_stall(&self) -> Duration {
        Duration::from_nanos(self.shared.get().longest_gap_ns.swap(0, Ordering::Relaxed))
    }

    /// Is the hog still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill (SIGKILL) and reap the hog, recorded as `kill(PID, SIGKILL)`.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.pid();
        let was_alive = self.alive();
        self.child.kill()?;
        if was_alive {
            trace::syscall(format!("kill({pid}, SIGKILL) = 0"));
        }
        Ok(())
    }
}

/// The CPUs this process may run on (its affinity mask), lowest first.
pub fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => sys::cpu_list(&set),
        Err(_) => vec![0],
    }
}

/// Pin `pid` to one CPU (`taskset -p -c CPU PID`), recorded as strace shows it.
pub fn pin_to_cpu(pid: i32, cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).context("CPU number out of range")?;
    sys::set_affinity(pid, &set).with_context(|| format!("sched_setaffinity({pid}, [{cpu}])"))
}

/// CPU time a process has used so far, in ns: the sum over its threads of the scheduler's
/// own count (`/proc/PID/task/TID/schedstat`, first field), or utime+stime from
/// `/proc/PID/stat` (clock ticks) where schedstat is missing. `None` once it is gone.
pub fn process_cpu_ns(pid: i32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    let mut any = false;
    for t in tasks.flatten() {
        let p = t.path().join("schedstat");
        if let Some(ns) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| parse_schedstat(&s))
        {
            total += ns;
            any = true;
        }
    }
    if any {
        return Some(total);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    // SAFETY: sysconf is always safe to call.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * (1_000_000_000 / hz))
}

/// First field of a schedstat line: time spent on the CPU, in ns.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks.
pub fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, i.e. index 11 here.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Field `n` (counting from 0 at the state letter) of /proc/PID/stat after the command name.
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    rest.split_whitespace().nth(n)?.parse().ok()
}

/// The controlling terminal of a process (`tty_nr` of /proc/PID/stat), 0 when none.
pub fn tty_nr(pid: i32) -> Option<i32> {
    stat_field(pid, 4)
}

/// The session a process belongs to: the PID of its session leader (a login shell for
/// anything started from a terminal, even after its parent exited).
pub fn session_id(pid: i32) -> Option<i32> {
    stat_field(pid, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cgroup::{Concept, CpuQuota, NslabCgroup, Reading};

    #[test]
    fn parses_real_schedstat_and_stat() {
        assert_eq!(parse_schedstat("1234567890 5678 42\n"), Some(1_234_567_890));
        assert_eq!(parse_schedstat(""), None);
        let stat = "4242 (my (odd) prog) R 1 4242 4242 34816 4242 4194304 110 0 0 0 \
                    250 17 0 0 20 0 1 0 5000 2400000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(267));
    }

    #[test]
    fn own_cpu_time_is_readable_and_grows() {
        let me = std::process::id() as i32;
        let a = process_cpu_ns(me).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let b = process_cpu_ns(me).unwrap();
        assert!(b > a, "{a} -> {b}");
        assert!(!allowed_cpus().is_empty());
    }

    #[test]
    fn root_hog_under_a_10_percent_quota_stays_near_10_percent() {
        let Some(_root) = crate::testing::root_or_skip("cpu hog under a quota") else {
            return;
        };
        let name = format!("nslabt-cpuhog-{}", std::process::id());
        let cg = NslabCgroup::create_for(&name, &["cpu"]).unwrap();
        cg.set(
            Concept::CpuQuota,
            &Reading::CpuQuota(CpuQuota {
                quota_us: Some(10_000),
                period_us: 100_000,
            }),
        )
        .unwrap();
        let mut hog = CpuHog::spawn().unwrap();
        let pid = hog.pid();
        hog.start_in(&cg).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let a = process_cpu_ns(pid).unwrap();
        let t = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        let b = process_cpu_ns(pid).unwrap();
        let share = (b - a) as f64 / t.elapsed().as_nanos() as f64 * 100.0;
        assert!((4.0..=16.0).contains(&share), "share {share:.1}%");
        let stall = hog.take_longest_stall();
        assert!(stall >= Duration::from_millis(40), "stall {stall:?}");
        assert!(hog.alive());
        let Reading::CpuStat(s) = cg.read(Concept::CpuStat).unwrap() else {
            panic!()
        };
        assert!(s.nr_throttled > 5, "{s:?}");
        hog.stop().unwrap();
        assert!(crate::kernel::procs::process(pid).map_or(true, |p| p.is_zombie()));
    }

    #[test]
    fn root_an_nslab_parent_left_by_another_run_goes_with_the_last_cgroup() {
        if !nix::unistd::geteuid().is_root() {
            crate::testing::skip("needs root (creates real cgroups)");
            return;
        }
        let layout = crate::kernel::cgroup::Layout::read().unwrap();
        let me = std::process::id() as i32;
        let base = crate::kernel::cgroup::dir_of_pid(&layout, me, "cpu")
            .unwrap()
            .unwrap();
        let parent = base.join("nslab");
        if parent.exists() {
            eprintln!("skipping: another nslab run uses {}", parent.display());
            return;
        }
        // Another run made the parent and ended while our cgroup was inside: it is on no
        // ledger now, and ours must take it along.
        std::fs::create_dir(&parent).unwrap();
        let mut cg = NslabCgroup::create_for(&format!("nslabt-last-{me}"), &["cpu"]).unwrap();
        cg.remove().unwrap();
        assert!(!parent.exists(), "the empty nslab parent was removed");
    }
}
