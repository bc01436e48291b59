//! Lesson 2: network namespaces, a veth pair between two of them, an echo across it.

mod bonus_check;
mod check;
mod seen;

use crate::error::Problem;
use crate::kernel::net::{self, Link, Netns};
use crate::kernel::sys;
use crate::lesson::instance::Named;
use crate::lesson::{run_check, Lesson, LessonInfo, NoSteps, Stage, Step, Table};
use crate::views;
use crate::views::topology::{self, NsBox};
use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub static INFO: LessonInfo = INFO_FIELDS;

/// Exercise 2b's check: its own facts, lesson 2's texts.
pub static BONUS: LessonInfo = LessonInfo {
    slug: "net-2b",
    parent: Some(&INFO),
    // Done by hand: no steps of its own (`nslab lesson` does not take it).
    steps: &NoSteps,
    title: "Three namespaces through a bridge (optional)",
    summary:
        "three namespaces through a bridge, each reaching the others: built by hand, `check 2b`",
    expected_check: include_str!("../../../lessons/02-net/expected/check-2b.txt"),
    check: run_check::<bonus_check::BridgeCheck>,
    needs_root: true,
    ..INFO_FIELDS
};

/// INFO as a constant, so that exercise 2b's check can take its texts.
const INFO_FIELDS: LessonInfo = LessonInfo {
    number: 2,
    slug: "net",
    title: "Network namespaces — a cable between two worlds",
    summary: "a new netns has only a DOWN lo; a veth pair joins two namespaces; an echo crosses it",
    text: include_str!("../../../lessons/02-net/lesson.md"),
    hints: include_str!("../../../lessons/02-net/hints.md"),
    solution: include_str!("../../../lessons/02-net/solution.md"),
    expected_check: include_str!("../../../lessons/02-net/expected/check.txt"),
    parent: None,
    steps: &Table::<NetLesson>::OF,
    check: run_check::<check::NetCheck>,
    needs_root: true,
    names: &[RED.base(), BLUE.base(), RED0.base(), BLUE0.base()],
};

pub const RED: Named = Named("nslab-red");
pub const BLUE: Named = Named("nslab-blue");
pub const RED0: Named = Named("nslab-red0");
pub const BLUE0: Named = Named("nslab-blue0");
pub const RED_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const BLUE_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
pub const PREFIX: u8 = 24;
const ECHO_TIMEOUT: Duration = Duration::from_secs(3);

/// The namespaces made so far; steps may start on their own (`--step d`) and make what
/// the earlier steps would have.
#[derive(Default)]
struct NetLesson {
    red: Option<Netns>,
    blue: Option<Netns>,
    cabled: bool,
}

/// If a namespace name is taken, say why (another run, a crashed one) instead of EEXIST.
fn create(name: Named) -> Result<Netns> {
    let name = name.get();
    if net::netns_path(&name).exists() {
        return Err(Problem::environment(
            format!("network namespace {name} exists already, and no running nslab made it: a run that could not remove it left it, or it is one of your own"),
            format!("sudo nslab cleanup removes one a run left; one of your own: sudo ip netns delete {name}"),
        ));
    }
    Netns::create(&name)
}

/// `name` of each netnsid `ns` knows the others by, for link tables.
fn netnsid_names(ns: &mut Netns, others: &[&Netns]) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for o in others {
        if let Ok(Some(id)) = ns.rtnl().netnsid_of(o.fd()) {
            out.push((id, o.name().to_string()));
        }
    }
    if let Ok(fd) = net::own_netns_fd() {
        if let Ok(Some(id)) = ns.rtnl().netnsid_of(std::os::fd::AsFd::as_fd(&fd)) {
            out.push((id, "nslab's own namespace".into()));
        }
    }
    out
}

fn links_view(ns: &mut Netns, others: &[&Netns]) -> Result<String> {
    let names = netnsid_names(ns, others);
    let links = ns.links()?;
    Ok(views::net::links(&links, &|id| {
        names.iter().find(|(i, _)| *i == id).map(|(_, n)| n.clone())
    }))
}

impl NetLesson {
    fn red(&mut self) -> &mut Netns {
        self.red.as_mut().expect("made by ensure_red")
    }

    fn blue(&mut self) -> &mut Netns {
        self.blue.as_mut().expect("made by ensure_blue")
    }

    fn ensure_red(&mut self, stage: &mut Stage) -> Result<()> {
        if self.red.is_none() {
            stage.say("Making nslab-red first, as step a would.");
            self.red = Some(create(RED)?);
            stage.syscalls();
        }
        Ok(())
    }

    fn ensure_blue(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_red(stage)?;
        if self.blue.is_none() {
            stage.say("Making nslab-blue first, as step b would.");
            self.blue = Some(create(BLUE)?);
            stage.syscalls();
        }
        Ok(())
    }

    fn ensure_cable(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_blue(stage)?;
        if !self.cabled {
            stage.say("Laying the cable of step c first.");
            self.lay_cable(None)?;
            stage.syscalls();
        }
        Ok(())
    }

    /// Step c's actions; with a stage, each is shown as command + message + view.
    fn lay_cable(&mut self, stage: Option<&mut Stage>) -> Result<()> {
        let mut host = net::host()?;
        let show = stage.is_some();
        let mut stage = stage;
        macro_rules! cmd {
            ($c:expr) => {
                if let Some(s) = stage.as_deref_mut() {
                    s.command($c);
                }
            };
        }
        cmd!(&format!(
            "sudo ip link add {RED0} type veth peer name {BLUE0}"
        ));
        host.create_veth(&RED0.get(), &BLUE0.get())?;
        if let Some(s) = stage.as_deref_mut() {
            s.syscalls();
            let pair: Vec<Link> = host
                .links()?
                .into_iter()
                .filter(|l| l.name == RED0 || l.name == BLUE0)
                .collect();
            s.view(
                "The new pair, in nslab's own namespace (ip link show type veth)",
                &views::net::links(&pair, &|_| None),
            );
            s.say(&format!(
                "Both ends are in nslab's own namespace, DOWN, each naming the other as its peer (PEER column: if{} and if{}).",
                pair.iter().find(|l| l.name == BLUE0).map(|l| l.index).unwrap_or(0),
                pair.iter().find(|l| l.name == RED0).map(|l| l.index).unwrap_or(0),
            ));
        }
        for (dev, which) in [(RED0, true), (BLUE0, false)] {
            let ns_name = if which { RED } else { BLUE };
            cmd!(&format!("sudo ip link set {dev} netns {ns_name}"));
            let fd = if which {
                self.red().fd()
            } else {
                self.blue().fd()
            };
            host.move_to_netns(&dev.get(), fd)?;
            if let Some(s) = stage.as_deref_mut() {
                s.syscalls();
                let (me, other) = if which {
                    (
                        self.red.as_mut().expect("red"),
                        self.blue.as_ref().expect("blue"),
                    )
                } else {
                    (
                        self.blue.as_mut().expect("blue"),
                        self.red.as_ref().expect("red"),
                    )
                };
                let view = links_view(me, &[other])?;
                s.view(&format!("Links in {ns_name} (ip -n {ns_name} link)"), &view);
            }
        }
        if let Some(s) = stage.as_deref_mut() {
            s.say("Each end left nslab's namespace and took its place in another; the PEER column now names the namespace the other end lives in.");
        }
        for (dev, ip, which) in [(RED0, RED_IP, true), (BLUE0, BLUE_IP, false)] {
            let ns_name = if which { RED } else { BLUE };
            cmd!(&format!(
                "sudo ip -n {ns_name} addr add {ip}/{PREFIX} dev {dev}"
            ));
            let ns = if which { self.red() } else { self.blue() };
            ns.rtnl().add_ipv4(&dev.get(), ip, PREFIX)?;
            if let Some(s) = stage.as_deref_mut() {
                s.syscalls();
                let addrs = ns.addresses()?;
                s.view(
                    &format!("Addresses in {ns_name} (ip -n {ns_name} addr)"),
                    &views::net::addresses(&addrs),
                );
            }
        }
        for (dev, which) in [(RED0, true), (BLUE0, false)] {
            let ns_name = if which { RED } else { BLUE };
            cmd!(&format!("sudo ip -n {ns_name} link set {dev} up"));
            let ns = if which { self.red() } else { self.blue() };
            ns.rtnl().set_up(&dev.get(), true)?;
            if which {
                // The peer is still down: no carrier yet, whatever the timing.
                if let Some(s) = stage.as_deref_mut() {
                    s.syscalls();
                    let l = self
                        .red()
                        .rtnl()
                        .link(&dev.get())?
                        .context("nslab-red0 vanished")?;
                    s.view(
                        &format!("{dev} after `up` (ip -n {ns_name} link show {dev})"),
                        &views::net::links(std::slice::from_ref(&l), &|_| Some(BLUE.into())),
                    );
                    s.say(&format!(
                        "{dev} is UP, but its flags say {}: a veth has a carrier only when its peer is up too.",
                        if l.lower_up { "LOWER_UP already" } else { "NO-CARRIER" }
                    ));
                }
            } else if let Some(s) = stage.as_deref_mut() {
                s.syscalls();
            }
        }
        self.red()
            .wait_carrier(&RED0.get(), Duration::from_secs(3))?;
        if show {
            if let Some(s) = stage {
                let (red, blue) = (
                    self.red.as_mut().expect("red"),
                    self.blue.as_ref().expect("blue"),
                );
                let view = links_view(red, &[blue])?;
                s.view(&format!("Links in {RED} once both ends are up"), &view);
            }
        }
        self.cabled = true;
        Ok(())
    }

    fn step_a(&mut self, stage: &mut Stage) -> Result<()> {
        let mut host = net::host()?;
        let mine = host.links()?;
        stage.command("sudo ip link");
        stage.say(&format!(
            "nslab's own namespace has {} link(s): {}.",
            mine.len(),
            mine.iter()
                .map(|l| format!("{} ({})", l.name, l.state_word()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        stage.command(&format!("sudo ip netns add {RED}"));
        self.red = Some(create(RED)?);
        stage.syscalls();
        stage.command(&format!("sudo ip -n {RED} link"));
        let red = self.red();
        let links = red.links()?;
        let addrs = red.addresses()?;
        stage.view(
            &format!("Links in {RED} (ip -n {RED} link)"),
            &views::net::links(&links, &|_| None),
        );
        stage.view(
            &format!("Addresses in {RED} (ip -n {RED} addr)"),
            &views::net::addresses(&addrs),
        );
        let lo = links.iter().find(|l| l.kind == "loopback");
        stage.say(&format!(
            "{RED} has {} link(s){}. With lo DOWN, not even 127.0.0.1 answers inside.",
            links.len(),
            match lo {
                Some(l) if links.len() == 1 => format!(": only {}, {}", l.name, l.state_word()),
                _ => String::new(),
            }
        ));
        Ok(())
    }

    fn step_b(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_red(stage)?;
        let before = net::list_netns()?;
        stage.command(&format!("sudo ip netns add {BLUE}"));
        let blue = create(BLUE)?;
        let creator = blue.creator_pid;
        self.blue = Some(blue);
        stage.syscalls();
        let after = net::list_netns()?;
        stage.before_after(
            "ip netns list (the files in /run/netns)",
            &(before.join("\n") + "\n"),
            &(after.join("\n") + "\n"),
        );
        if let Some(line) = net::netns_mountinfo(&BLUE.get()) {
            stage.command("grep /run/netns /proc/self/mountinfo");
            stage.view(
                &format!("The mount that keeps {BLUE} alive"),
                &views::ns::mount_line(&line),
            );
        }
        let inode = net::netns_inode(&BLUE.get())
            .map(|i| format!("net:[{i}]"))
            .unwrap_or_else(|| "?".into());
        let gone = creator.is_some_and(|p| crate::kernel::procs::process(p).is_none());
        stage.say(&format!(
            "/run/netns/{BLUE} is now the namespace {inode} itself (stat shows that inode). The process that made it, PID {}, {}: the mount alone keeps the namespace alive.",
            creator.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            if gone { "has already exited" } else { "is still ending" }
        ));
        Ok(())
    }

    fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_blue(stage)?;
        if self.cabled {
            return Ok(());
        }
        self.lay_cable(Some(stage))
    }

    fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cable(stage)?;
        stage.command(&format!("sudo ip netns exec {RED} cat /proc/net/dev"));
        let before = self.red().counters()?;
        stage.syscalls();
        stage.command(&format!("sudo ip netns exec {RED} ping -c 1 {BLUE_IP}"));
        let reply = self.red().echo(BLUE_IP, 1, ECHO_TIMEOUT)?;
        stage.syscalls();
        let Some(reply) = reply else {
            bail!("no echo reply from {BLUE_IP} within {ECHO_TIMEOUT:?}: the cable of step c does not carry packets here");
        };
        stage.say(&format!(
            "{} bytes from {}: icmp_seq={} ttl={} time={}",
            reply.bytes,
            reply.from,
            reply.seq,
            reply.ttl,
            views::millis(reply.rtt_us)
        ));
        let after = self.red().counters()?;
        stage.syscalls();
        stage.view(
            &format!(
                "Counters inside {RED} (/proc/PID/net/dev of a process there), with the change"
            ),
            &views::net::counters(&before, &after),
        );
        let d = |f: fn(&net::IfCounters) -> u64| {
            let a = after.iter().find(|c| c.name == RED0).map(f).unwrap_or(0);
            let b = before.iter().find(|c| c.name == RED0).map(f).unwrap_or(0);
            a.saturating_sub(b)
        };
        stage.say(&format!(
            "{RED0} sent {} packet(s) and received {}: the echo request and its reply, plus the ARP exchange that found {BLUE0}'s MAC address (and IPv6 chatter the kernel sends on its own).",
            d(|c| c.tx_packets),
            d(|c| c.rx_packets)
        ));
        stage.command(&format!("sudo ip netns exec {BLUE} ping -c 1 {RED_IP}"));
        let back = self.blue().echo(RED_IP, 2, ECHO_TIMEOUT)?;
        stage.syscalls();
        match back {
            Some(r) => stage.say(&format!(
                "And back: {} bytes from {}: icmp_seq={} ttl={} time={}",
                r.bytes,
                r.from,
                r.seq,
                r.ttl,
                views::millis(r.rtt_us)
            )),
            None => bail!("no echo reply from {RED_IP} within {ECHO_TIMEOUT:?}"),
        }
        Ok(())
    }

    fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cable(stage)?;
        stage.command(&format!(
            "sudo ip -n {RED} -d link; sudo ip -n {BLUE} -d link"
        ));
        let (red, blue) = (
            self.red.as_mut().expect("red"),
            self.blue.as_mut().expect("blue"),
        );
        let id_of_blue = red.rtnl().netnsid_of(blue.fd())?;
        let id_of_red = blue.rtnl().netnsid_of(red.fd())?;
        let boxes = vec![
            NsBox {
                name: RED.into(),
                links: red.links()?,
                addresses: red.addresses()?,
            },
            NsBox {
                name: BLUE.into(),
                links: blue.links()?,
                addresses: blue.addresses()?,
            },
        ];
        let netns_of = |i: usize, id: i32| match i {
            0 if Some(id) == id_of_blue => Some(1),
            1 if Some(id) == id_of_red => Some(0),
            _ => None,
        };
        let cables = topology::cables(&boxes, &netns_of);
        stage.view(
            "What the kernel says, drawn",
            &topology::diagram(&boxes, &cables),
        );
        let r0 = boxes[0].links.iter().find(|l| l.name == RED0);
        let b0 = boxes[1].links.iter().find(|l| l.name == BLUE0);
        if let (Some(r0), Some(b0)) = (r0, b0) {
            stage.say(&format!(
                "{RED0} (ifindex {}) names its peer as ifindex {} in netnsid {}, which is how {RED} knows {BLUE}; {BLUE0} (ifindex {}) names ifindex {} in netnsid {}. Each end names the other: that is the cable.",
                r0.index,
                r0.peer_index.map(|x| x.to_string()).unwrap_or("-".into()),
                r0.link_netnsid.map(|x| x.to_string()).unwrap_or("-".into()),
                b0.index,
                b0.peer_index.map(|x| x.to_string()).unwrap_or("-".into()),
                b0.link_netnsid.map(|x| x.to_string()).unwrap_or("-".into()),
            ));
        }
        Ok(())
    }

    fn step_f(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cable(stage)?;
        let before = {
            let (blue, red) = (
                self.blue.as_mut().expect("blue"),
                self.red.as_ref().expect("red"),
            );
            links_view(blue, &[red])?
        };
        stage.command(&format!("sudo ip netns delete {RED}"));
        let red = self.red.take().expect("red");
        red.delete()?;
        stage.syscalls();
        // The kernel destroys the namespace in the background once nothing holds it.
        let start = Instant::now();
        let blue = self.blue();
        while blue.rtnl().link(&BLUE0.get())?.is_some() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("{BLUE0} is still in {BLUE} 10 s after {RED} was deleted");
            }
            sys::sleep(Duration::from_millis(10))?;
        }
        let waited = start.elapsed();
        let after = views::net::links(&blue.links()?, &|_| None);
        stage.before_after(
            &format!("Links in {BLUE}, before and after deleting {RED}"),
            &before,
            &after,
        );
        stage.say(&format!(
            "{BLUE0} vanished {} after the unmount: destroying {RED} destroyed {RED0}, and a veth end never outlives its peer.",
            if waited < Duration::from_millis(50) { "at once".to_string() } else { format!("about {} ms", waited.as_millis() / 10 * 10) }
        ));
        stage.command(&format!("sudo ip netns delete {BLUE}"));
        let blue = self.blue.take().expect("blue");
        blue.delete()?;
        stage.syscalls();
        let left: Vec<String> = net::list_netns()?
            .into_iter()
            .filter(|n| n == RED || n == BLUE)
            .collect();
        stage.say(&if left.is_empty() {
            format!("ip netns list shows neither {RED} nor {BLUE} any more.")
        } else {
            format!("still listed: {}", left.join(", "))
        });
        self.cabled = false;
        Ok(())
    }
}

impl Lesson for NetLesson {
    const STEPS: &'static [Step<Self>] = &[
        Step {
            id: 'a',
            title: "A new network namespace has only lo, and it is DOWN",
            keyboard: false,
            run: Self::step_a,
        },
        Step {
            id: 'b',
            title: "What `ip netns add` really is",
            keyboard: false,
            run: Self::step_b,
        },
        Step {
            id: 'c',
            title: "A veth pair, one end in each namespace",
            keyboard: false,
            run: Self::step_c,
        },
        Step {
            id: 'd',
            title: "An echo across the cable",
            keyboard: false,
            run: Self::step_d,
        },
        Step {
            id: 'e',
            title: "The picture, drawn from the real state",
            keyboard: false,
            run: Self::step_e,
        },
        Step {
            id: 'f',
            title: "Teardown",
            keyboard: false,
            run: Self::step_f,
        },
    ];

    fn start(_: &clap::ArgMatches) -> Result<Self> {
        Ok(Self::default())
    }
}

#[cfg(test)]
mod tests;
