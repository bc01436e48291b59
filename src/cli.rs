//! The command line (see README "Commands" and the exit codes in error.rs).

use crate::lessons;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "nslab",
    version,
    about = "A workshop in one binary: Linux namespaces and cgroups, done for real",
    long_about = "nslab walks you through Linux namespaces and cgroups: it explains, does it for real \
                  through the kernel's own interfaces, shows /proc and cgroup files before and after, \
                  and checks the exercises you do by hand.\n\nRun `nslab` with no command to see where \
                  you stand.",
    after_help = "Exit codes: 0 ok / check passed, 1 check not passed or failure, 2 usage error, \
                  3 this environment cannot run it (not root, controller missing), 128+N ended by signal N after teardown (130 Ctrl-C, 129 terminal closed, 143 SIGTERM)."
)]
pub struct Cli {
    /// Plain text: no colour, no progress bars (also when piped or NO_COLOR is set).
    #[arg(long, global = true)]
    pub plain: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The lessons and your status in each.
    List,
    /// Run a lesson: explanation, the real thing, before/after views, then the exercise.
    Lesson {
        /// Lesson number or name (1 or pid); `3b` for lesson 3's optional mystery.
        lesson: String,
        /// Run every step without pausing; skip steps that need you at the keyboard.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Start at this step (a, b, c, ...).
        #[arg(long, value_name = "K")]
        step: Option<char>,
        // Each lesson's own options (lesson 3's --limit) are added by `command()`.
    },
    /// Judge your exercise on the live system.
    Check {
        /// Lesson number or name; `2b` for lesson 2's bridge, `3b` for lesson 3's mystery
        /// (while `nslab lesson 3b` runs), `5b` for lesson 5's bonus (the container's network).
        lesson: String,
        /// Machine-readable result: verdict, facts, diff and hint (with --watch: one JSON
        /// object per line, per change).
        #[arg(long)]
        json: bool,
        /// Judge again as you work, redrawing the facts (✓ or ✗) until the check passes
        /// (exit 0) or Ctrl-C (exit 130). Piped or --plain: one line per change.
        #[arg(long, short = 'w')]
        watch: bool,
        /// Judge the namespace or cgroup of this host PID instead of searching.
        #[arg(long)]
        pid: Option<i32>,
        /// Lesson 3: judge this cgroup (a name, a path as /proc/PID/cgroup shows it, or its
        /// directory) instead of searching.
        #[arg(long, value_name = "NAME-OR-PATH")]
        cgroup: Option<String>,
    },
    /// A hint for the exercise (all of them, or the one for a problem id).
    Hint {
        lesson: String,
        /// The problem id a check reported.
        id: Option<String>,
    },
    /// The exercise's solution.
    Solution { lesson: String },
    /// Look at any process: its namespaces, its PID namespace's processes, its cgroups.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Lessons seen and exercises passed.
    Progress {
        #[arg(long)]
        json: bool,
    },
    /// Forget your progress in one lesson, or in all of them; nothing on the system changes.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["lesson", "all"])))]
    Reset {
        /// Lesson number or name.
        lesson: Option<String>,
        /// Every lesson.
        #[arg(long)]
        all: bool,
        /// Do not ask (needed when not at a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Run a command in a container: the small runtime lesson 5 builds.
    ///
    /// New PID, mount, UTS, IPC, network (only lo) and cgroup namespaces, a root
    /// filesystem made the root with pivot_root, its own /proc (dangerous paths masked or
    /// read-only), /sys (read-only) and minimal /dev, a hostname, and a cgroup when limits
    /// are given. The command keeps runc's default capabilities (CAP_AUDIT_WRITE, CAP_KILL,
    /// CAP_NET_BIND_SERVICE) and runs with no_new_privs. Its exit status is nslab's;
    /// everything is removed afterwards.
    #[command(
        after_help = "Examples:\n  sudo nslab run -- /bin/sh\n  sudo nslab run --memory 100M --cpus 0.5 --pids 50 --hostname box -- sh -c 'ps; hostname'\n  sudo nslab run --rootfs ~/minicontainer/rootfs -- /bin/bash"
    )]
    Run {
        /// Use this directory as the root filesystem (default: build one from the host's busybox-static or programs).
        #[arg(long, value_name = "DIR")]
        rootfs: Option<std::path::PathBuf>,
        /// Memory limit, e.g. 100M or 1G.
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
        /// CPU limit in CPUs, e.g. 0.5 for half of one CPU.
        #[arg(long, value_name = "CPUS")]
        cpus: Option<String>,
        /// Most processes the container may have at once.
        #[arg(long, value_name = "N")]
        pids: Option<String>,
        /// The container's hostname (default nslab).
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
        /// A network of its own: a veth pair to the host (eth0 inside, a /24 of
        /// 10.203.0.0/16), a default route via the host end and NAT (masquerade) on the
        /// host, ready before CMD starts and removed afterwards. nslab never changes
        /// net.ipv4.ip_forward: with it at 0 the container reaches the host's own addresses.
        #[arg(long)]
        net: bool,
        /// Keep this capability too (CAP_NET_RAW or NET_RAW; ALL for every one). Repeatable.
        #[arg(long = "cap-add", value_name = "CAP")]
        cap_add: Vec<String>,
        /// Drop this capability from the default set (ALL for every one). Repeatable;
        /// a drop wins over an add.
        #[arg(long = "cap-drop", value_name = "CAP")]
        cap_drop: Vec<String>,
        /// Print the system calls nslab made, as strace shows them, on stderr.
        #[arg(long)]
        trace: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Remove everything a crashed or killed nslab run left behind (only nslab's own).
    Cleanup,
    /// Can this machine run the lessons? Kernel, privileges, cgroups, tools — with fixes.
    Doctor,
}

#[derive(Subcommand, Debug)]
pub enum ShowWhat {
    /// Namespaces of PID (default: your shell), compared with nslab's own.
    Ns { pid: Option<i32> },
    /// Processes in the PID namespace of PID, with their PIDs in every namespace.
    Procs { pid: Option<i32> },
    /// The cgroups of PID and their limits and usage.
    Cgroup { pid: Option<i32> },
}

/// The command line, with every lesson's own options under `nslab lesson`.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("lesson", |c| {
        c.args(lessons::with_steps().flat_map(|l| l.steps.options()))
    })
}

/// Parse the process's arguments; on a usage error clap prints it and exits with 2.
pub fn parse() -> (Cli, ArgMatches) {
    let mut command = command();
    let matches = command.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| e.format(&mut command))
        .unwrap_or_else(|e| e.exit());
    (cli, matches)
}
