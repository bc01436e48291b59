//! Lesson 2: network namespaces, a veth pair between two of them, an echo across it.

use crate::checks::whose::{self, Recorded, Whose};
use crate::error::Problem;
use crate::kernel::net::{self, ipv4_of as v4, same_subnet, Address, Link, Netns};
use crate::kernel::sys;
use crate::lesson::{
    CheckArgs, Fact, Lesson, LessonInfo, NoSteps, Observation, Stage, Step, Table,
};
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
    check: check_bridge,
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
    check,
};

pub const RED: &str = "nslab-red";
pub const BLUE: &str = "nslab-blue";
pub const RED0: &str = "nslab-red0";
pub const BLUE0: &str = "nslab-blue0";
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
fn create(name: &str) -> Result<Netns> {
    if net::netns_path(name).exists() {
        return Err(Problem::environment(
            format!("network namespace {name} exists already: another `nslab lesson 2` is running, or a killed one left it"),
            "if no other lesson is running: sudo nslab cleanup (or sudo ip netns delete NAME)",
        ));
    }
    Netns::create(name)
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
        host.create_veth(RED0, BLUE0)?;
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
            host.move_to_netns(dev, fd)?;
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
            ns.rtnl().add_ipv4(dev, ip, PREFIX)?;
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
            ns.rtnl().set_up(dev, true)?;
            if which {
                // The peer is still down: no carrier yet, whatever the timing.
                if let Some(s) = stage.as_deref_mut() {
                    s.syscalls();
                    let l = self
                        .red()
                        .rtnl()
                        .link(dev)?
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
        self.red().wait_carrier(RED0, Duration::from_secs(3))?;
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
        if let Some(line) = net::netns_mountinfo(BLUE) {
            stage.command("grep /run/netns /proc/self/mountinfo");
            stage.view(&format!("The mount that keeps {BLUE} alive"), &line);
        }
        let inode = net::netns_inode(BLUE)
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
        while blue.rtnl().link(BLUE0)?.is_some() {
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

// ---------------------------------------------------------------------------------------
// The check.

pub const NAMESPACES: &str = "network namespaces of yours";
pub const ENDS: &str = "veth ends";
pub const STATE: &str = "link state";
pub const ADDRESSES: &str = "addresses";
pub const ECHO_AB: &str = "echo first -> second";
pub const ECHO_BA: &str = "echo second -> first";
const CHECK_ECHO_TIMEOUT: Duration = Duration::from_secs(2);

const HOW: &str = "nslab judges the named network namespaces in /run/netns (made with `ip netns add`), not nslab's own (nslab-…); of those joined by a veth pair, the newest pair";

/// A learner's namespace as seen: its handle, links and addresses.
struct Seen {
    ns: Netns,
    links: Vec<Link>,
    addrs: Vec<Address>,
    ctime: i64,
}

fn facts(values: [&str; 6]) -> Vec<Fact> {
    [NAMESPACES, ENDS, STATE, ADDRESSES, ECHO_AB, ECHO_BA]
        .iter()
        .zip(values)
        .map(|(n, v)| Fact::new(*n, v))
        .collect()
}

/// nslab's own objects: the `nslab-` prefix its lessons use, and anything a run recorded.
fn is_nslabs(name: &str) -> bool {
    whose::netns(name, &Recorded::read()) == Whose::Nslab
}

/// The veth in `a` whose peer is a veth in `b` naming it back: (end in a, end in b).
fn cable_between(a: &mut Seen, b: &Seen) -> Result<Option<(Link, Link)>> {
    let Some(id) = a.ns.rtnl().netnsid_of(b.ns.fd())? else {
        return Ok(None);
    };
    for l in a
        .links
        .iter()
        // A bridge's port is exercise 2b's cabling, not the pair of exercise 2.
        .filter(|l| l.kind == "veth" && l.link_netnsid == Some(id) && l.master.is_none())
    {
        if let Some(p) = b
            .links
            .iter()
            .find(|p| Some(p.index) == l.peer_index && p.kind == "veth" && p.master.is_none())
        {
            if p.peer_index == Some(l.index) {
                return Ok(Some((l.clone(), p.clone())));
            }
        }
    }
    Ok(None)
}

/// A bridge in one of the learner's namespaces, with the namespaces its veth ports lead
/// into (exercise 2b's hub).
struct Bridge {
    /// The namespace holding it (an index into the namespaces seen).
    hub: usize,
    br: Link,
    /// Its veth ports, in the hub.
    ports: Vec<Link>,
    /// The namespaces plugged in, each with the far end of its port's pair.
    members: Vec<(usize, Link)>,
}

impl Bridge {
    /// What is DOWN of the bridge, its ports and the members' ends, by name.
    fn down(&self, seen: &[Seen]) -> Vec<String> {
        let mut down: Vec<String> = Vec::new();
        if !self.br.admin_up {
            down.push(self.br.name.clone());
        }
        down.extend(
            self.ports
                .iter()
                .filter(|p| !p.admin_up)
                .map(|p| p.name.clone()),
        );
        down.extend(
            self.members
                .iter()
                .filter(|(_, e)| !e.admin_up)
                .map(|(m, e)| format!("{} (in {})", e.name, seen[*m].ns.name())),
        );
        down
    }

    fn member_names<'a>(&self, seen: &'a [Seen]) -> Vec<&'a str> {
        self.members
            .iter()
            .map(|(m, _)| seen[*m].ns.name())
            .collect()
    }
}

/// Every bridge in the learner's namespaces, with the namespaces plugged into it.
fn bridges(seen: &mut [Seen]) -> Result<Vec<Bridge>> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    let fds: Vec<i32> = seen.iter().map(|s| s.ns.fd().as_raw_fd()).collect();
    let mut out = Vec::new();
    for h in 0..seen.len() {
        let found: Vec<Link> = seen[h]
            .links
            .iter()
            .filter(|l| l.kind == "bridge")
            .cloned()
            .collect();
        for br in found {
            let ports: Vec<Link> = seen[h]
                .links
                .iter()
                .filter(|l| l.kind == "veth" && l.master == Some(br.index))
                .cloned()
                .collect();
            let mut members: Vec<(usize, Link)> = Vec::new();
            for (m, fd) in fds.iter().enumerate() {
                if m == h {
                    continue;
                }
                // SAFETY: the descriptor belongs to seen[m], alive for this whole call.
                let other = unsafe { BorrowedFd::borrow_raw(*fd) };
                let Some(id) = seen[h].ns.rtnl().netnsid_of(other)? else {
                    continue;
                };
                for p in ports.iter().filter(|p| p.link_netnsid == Some(id)) {
                    if let Some(end) = seen[m]
                        .links
                        .iter()
                        .find(|e| Some(e.index) == p.peer_index && e.kind == "veth")
                    {
                        members.push((m, end.clone()));
                    }
                }
            }
            out.push(Bridge {
                hub: h,
                br,
                ports,
                members,
            });
        }
    }
    Ok(out)
}

/// Exercise 2b seen from check 2: a bridge joining three or more namespaces, described in a
/// note (with one echo from the first member to each other one); `nslab check 2b` judges it.
fn bridge_notes(seen: &mut [Seen]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in bridges(seen)?
        .into_iter()
        .filter(|b| b.members.len() >= BRIDGE_MEMBERS)
    {
        let down = b.down(seen);
        let mut echoes = Vec::new();
        let (m0, _) = b.members[0].clone();
        for (k, (m, e)) in b.members.iter().enumerate().skip(1) {
            let target = v4(&seen[*m].addrs, e.index).first().map(|(ip, _)| *ip);
            let result = match target {
                None => "no address".to_string(),
                Some(ip) => match seen[m0].ns.echo(ip, 100 + k as u16, CHECK_ECHO_TIMEOUT) {
                    Ok(Some(r)) => format!("{ip} replied ({})", views::millis(r.rtt_us)),
                    Ok(None) => format!("{ip} no reply"),
                    Err(e) => format!("{ip} not sent ({})", e.root_cause()),
                },
            };
            echoes.push(format!("{}: {result}", seen[*m].ns.name()));
        }
        out.push(format!(
            "exercise 2b: bridge {} in {} joins {}; {}; echo from {}: {} (`nslab check 2b` judges it)",
            b.br.name,
            seen[b.hub].ns.name(),
            b.member_names(seen).join(", "),
            if down.is_empty() {
                "everything UP".to_string()
            } else {
                format!("DOWN: {}", down.join(", "))
            },
            seen[m0].ns.name(),
            echoes.join("; ")
        ));
    }
    Ok(out)
}

/// The learner's named namespaces, opened, with their links and addresses; nslab's own
/// are left out (and named in the notes).
fn look_at_learners_namespaces(notes: &mut Vec<String>) -> Result<(Vec<String>, Vec<Seen>)> {
    let all = net::list_netns()?;
    let (ours, names): (Vec<String>, Vec<String>) = all.into_iter().partition(|n| is_nslabs(n));
    if !ours.is_empty() {
        notes.push(format!("ignored nslab's own: {}", ours.join(", ")));
    }
    let mut seen: Vec<Seen> = Vec::new();
    for name in &names {
        match Netns::open(name).and_then(|mut ns| {
            let links = ns.links()?;
            let addrs = ns.addresses()?;
            Ok(Seen {
                ctime: net::netns_ctime(name),
                ns,
                links,
                addrs,
            })
        }) {
            Ok(s) => seen.push(s),
            Err(e) => notes.push(format!("could not look into {name}: {e:#}")),
        }
    }
    Ok((names, seen))
}

const BRIDGE: &str = "bridge";
const BRIDGE_STATE: &str = "link state";
const BRIDGE_ADDRESSES: &str = "addresses";
const BRIDGE_ECHOES: &str = "echoes";
/// The fewest namespaces exercise 2b plugs into its bridge.
const BRIDGE_MEMBERS: usize = 3;

fn bridge_facts(values: [&str; 4]) -> Vec<Fact> {
    [BRIDGE, BRIDGE_STATE, BRIDGE_ADDRESSES, BRIDGE_ECHOES]
        .iter()
        .zip(values)
        .map(|(n, v)| Fact::new(*n, v))
        .collect()
}

/// `nslab check 2b`: a bridge in one namespace of the learner's, three or more namespaces
/// plugged into it through veth pairs, everything UP, one address on each end in one
/// subnet, and every member reaching every other. The bridge with most members is judged.
fn check_bridge(_args: &CheckArgs) -> Result<Observation> {
    let mut notes = vec![
        "nslab judges the named network namespaces in /run/netns (not nslab's own): of the bridges in them, the one \
         with most namespaces plugged in"
            .to_string(),
    ];
    let (names, mut seen) = look_at_learners_namespaces(&mut notes)?;
    let shown = if names.is_empty() {
        "none of yours".to_string()
    } else {
        names.join(", ")
    };
    let best = bridges(&mut seen)?
        .into_iter()
        .max_by_key(|b| b.members.len());
    let Some(b) = best else {
        return Ok(Observation {
            judged: format!("the named network namespaces in /run/netns: {shown}"),
            facts: bridge_facts(["none in your namespaces", "-", "-", "-"]),
            problem: Some("2b-no-bridge"),
            verify: vec![
                "ip netns list".into(),
                "sudo ip -n HUB -d link show type bridge".into(),
            ],
            notes,
        });
    };
    let hub = seen[b.hub].ns.name().to_string();
    let members = b.member_names(&seen).join(", ");
    let judged = format!(
        "bridge {} in {hub}; plugged in: {}",
        b.br.name,
        if members.is_empty() {
            "nothing".to_string()
        } else {
            members
        }
    );
    let verify = vec![
        format!("sudo ip -n {hub} -d link show master {}", b.br.name),
        format!("sudo ip -n {hub} -br link"),
    ];
    let finish = |facts, problem, verify, notes| {
        Ok(Observation {
            judged: judged.clone(),
            facts,
            problem,
            verify,
            notes,
        })
    };
    if b.members.len() < BRIDGE_MEMBERS {
        let found = format!(
            "found, with only {} namespace(s) plugged in",
            b.members.len()
        );
        return finish(
            bridge_facts([&found, "-", "-", "-"]),
            Some("2b-few-members"),
            verify,
            notes,
        );
    }
    let found = "found, with three or more namespaces plugged in";
    let down = b.down(&seen);
    if !down.is_empty() {
        let state = format!("DOWN: {}", down.join(", "));
        return finish(
            bridge_facts([found, &state, "-", "-"]),
            Some("2b-down"),
            verify,
            notes,
        );
    }
    let up = "bridge, its ports and every end UP";
    // One address per end, all in the subnet of the first one.
    let mut addrs: Vec<(usize, Ipv4Addr)> = Vec::new();
    let mut first: Option<(Ipv4Addr, u8)> = None;
    for (m, e) in &b.members {
        let here = v4(&seen[*m].addrs, e.index);
        let name = seen[*m].ns.name();
        let Some(a) = here.first().copied() else {
            let what = format!("no IPv4 address on {} (in {name})", e.name);
            return finish(
                bridge_facts([found, up, &what, "-"]),
                Some("2b-address"),
                verify,
                notes,
            );
        };
        match first {
            None => first = Some(a),
            Some(f) if !same_subnet(f, a) => {
                let what = format!(
                    "not in one subnet: {}/{} and {}/{} (on {} in {name})",
                    f.0, f.1, a.0, a.1, e.name
                );
                return finish(
                    bridge_facts([found, up, &what, "-"]),
                    Some("2b-address"),
                    verify,
                    notes,
                );
            }
            Some(_) => {}
        }
        addrs.push((*m, a.0));
    }
    let one_subnet = "one on each end, all in one subnet";
    // Every member to every other: the first silence is the answer.
    let mut seq = 200u16;
    let mut rtts = Vec::new();
    for &(from, _) in &addrs {
        for &(to, ip) in &addrs {
            if from == to {
                continue;
            }
            seq = seq.wrapping_add(2);
            let (a, z) = (seen[from].ns.name(), seen[to].ns.name());
            match seen[from].ns.echo_tries(ip, seq, 2, CHECK_ECHO_TIMEOUT) {
                Ok(Some(r)) => rtts.push(format!("{a} -> {z} {}", views::millis(r.rtt_us))),
                outcome => {
                    let why = match outcome {
                        Err(e) => format!("sending failed ({})", e.root_cause()),
                        _ => format!("no reply within {}s", CHECK_ECHO_TIMEOUT.as_secs() * 2),
                    };
                    let what = format!("{a} -> {z} ({ip}): {why}");
                    let mut verify = verify;
                    verify.push(format!("sudo ip netns exec {a} ping -c 1 {ip}"));
                    return finish(
                        bridge_facts([found, up, one_subnet, &what]),
                        Some("2b-no-reply"),
                        verify,
                        notes,
                    );
                }
            }
        }
    }
    notes.push(format!("round trips: {}", rtts.join("; ")));
    finish(
        bridge_facts([found, up, one_subnet, "every namespace reaches every other"]),
        None,
        verify,
        notes,
    )
}

fn check(_args: &CheckArgs) -> Result<Observation> {
    let mut notes = vec![HOW.to_string()];
    let (names, mut seen) = look_at_learners_namespaces(&mut notes)?;
    if seen.len() < 2 {
        let found = match seen.first() {
            None => "none in /run/netns".to_string(),
            Some(s) => format!("only one: {}", s.ns.name()),
        };
        return Ok(Observation {
            judged: format!(
                "the named network namespaces in /run/netns: {}",
                if names.is_empty() {
                    "none of yours".into()
                } else {
                    names.join(", ")
                }
            ),
            facts: facts([&found, "-", "-", "-", "-", "-"]),
            problem: Some("namespace-missing"),
            verify: vec!["ip netns list".into(), "ls -l /run/netns".into()],
            notes,
        });
    }
    notes.extend(bridge_notes(&mut seen)?);
    // Every pair joined by a veth; the newest pair is the learner's current work.
    let mut pairs = Vec::new();
    for i in 0..seen.len() {
        for j in i + 1..seen.len() {
            let (left, right) = seen.split_at_mut(j);
            if let Some((la, lb)) = cable_between(&mut left[i], &right[0])? {
                pairs.push((i, j, la, lb));
            }
        }
    }
    if pairs.len() > 1 {
        notes.push(format!(
            "{} pairs of namespaces are joined by a veth; judging the newest",
            pairs.len()
        ));
    }
    let newest = pairs.into_iter().max_by_key(|(i, j, _, _)| {
        let (a, b) = (seen[*i].ctime, seen[*j].ctime);
        (a.max(b), a.min(b))
    });
    match newest {
        Some((i, j, la, lb)) => judge_pair(&mut seen, i, j, la, lb, notes),
        None => no_cable(&mut seen, notes),
    }
}

/// No veth joins two learner namespaces: is an end still in the host?
fn no_cable(seen: &mut [Seen], notes: Vec<String>) -> Result<Observation> {
    let names: Vec<String> = seen.iter().map(|s| s.ns.name().to_string()).collect();
    let count = format!("{}, but no veth pair joins two of them", names.len());
    let mut host = net::host()?;
    let host_links = host.links()?;
    let host_fd = net::own_netns_fd()?;
    // An end in a learner namespace whose peer is in the host.
    for s in seen.iter_mut() {
        let Some(host_id) = s.ns.rtnl().netnsid_of(std::os::fd::AsFd::as_fd(&host_fd))? else {
            continue;
        };
        if let Some(l) = s
            .links
            .iter()
            .find(|l| l.kind == "veth" && l.link_netnsid == Some(host_id))
        {
            let peer = host_links.iter().find(|h| Some(h.index) == l.peer_index);
            let peer_name = peer
                .map(|p| p.name.clone())
                .unwrap_or_else(|| format!("if{}", l.peer_index.unwrap_or(0)));
            return Ok(Observation {
                judged: format!(
                    "namespaces {}: {} (in {}) is a veth whose peer {peer_name} is still in the host's namespace",
                    names.join(", "),
                    l.name,
                    s.ns.name()
                ),
                facts: facts([&count, &format!("{} in {}, its peer {peer_name} still in the host", l.name, s.ns.name()), "-", "-", "-", "-"]),
                problem: Some("end-in-host"),
                verify: vec![
                    "sudo ip link show type veth".into(),
                    format!("sudo ip -n {} -d link show {}", s.ns.name(), l.name),
                ],
                notes,
            });
        }
    }
    // A pair with both ends still in the host, not nslab's.
    let pair = host_links.iter().find(|l| {
        l.kind == "veth"
            && l.link_netnsid.is_none()
            && !l.name.starts_with("nslab-")
            && host_links
                .iter()
                .any(|p| Some(p.index) == l.peer_index && p.peer_index == Some(l.index))
    });
    if let Some(l) = pair {
        let peer = host_links
            .iter()
            .find(|p| Some(p.index) == l.peer_index)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        return Ok(Observation {
            judged: format!(
                "namespaces {}; the veth pair {} <-> {peer} is entirely in the host's namespace",
                names.join(", "),
                l.name
            ),
            facts: facts([
                &count,
                &format!("{} and {peer} both still in the host", l.name),
                "-",
                "-",
                "-",
                "-",
            ]),
            problem: Some("both-ends-in-host"),
            verify: vec!["sudo ip link show type veth".into()],
            notes,
        });
    }
    Ok(Observation {
        judged: format!(
            "namespaces {}: none has a veth whose peer is in another of them",
            names.join(", ")
        ),
        facts: facts([&count, "-", "-", "-", "-", "-"]),
        problem: Some("no-veth"),
        verify: names
            .iter()
            .map(|n| format!("sudo ip -n {n} -d link"))
            .collect(),
        notes,
    })
}

fn judge_pair(
    seen: &mut [Seen],
    i: usize,
    j: usize,
    la: Link,
    lb: Link,
    notes: Vec<String>,
) -> Result<Observation> {
    let (an, bn) = (seen[i].ns.name().to_string(), seen[j].ns.name().to_string());
    let mut problem: Option<&'static str> = None;
    let state = match (la.admin_up, lb.admin_up) {
        (true, true) => "both UP".to_string(),
        (a, b) => {
            problem = Some("link-down");
            let mut down = Vec::new();
            if !a {
                down.push(format!("{} (in {an})", la.name));
            }
            if !b {
                down.push(format!("{} (in {bn})", lb.name));
            }
            format!("{} DOWN", down.join(" and "))
        }
    };
    let (aa, ba) = (v4(&seen[i].addrs, la.index), v4(&seen[j].addrs, lb.index));
    let mut target = None;
    let addresses = if aa.is_empty() || ba.is_empty() {
        problem = problem.or(Some("address-missing"));
        let mut missing = Vec::new();
        if aa.is_empty() {
            missing.push(format!("{} (in {an})", la.name));
        }
        if ba.is_empty() {
            missing.push(format!("{} (in {bn})", lb.name));
        }
        format!("no IPv4 address on {}", missing.join(" or "))
    } else {
        let hit = aa
            .iter()
            .find_map(|a| ba.iter().find(|b| same_subnet(*a, **b)).map(|b| (*a, *b)));
        match hit {
            Some(p) => {
                target = Some(p);
                "one on each end, in one subnet".to_string()
            }
            None => {
                problem = problem.or(Some("different-subnets"));
                format!(
                    "different subnets: {}/{} and {}/{}",
                    aa[0].0, aa[0].1, ba[0].0, ba[0].1
                )
            }
        }
    };
    let (mut ab, mut ba_echo) = ("not sent".to_string(), "not sent".to_string());
    let mut rtts = String::new();
    if let (Some(((a_ip, _), (b_ip, _))), None) = (target, problem) {
        // The round trip, or why there was none. Sending can fail for real (a `prohibit`
        // route, no route at all): that is the learner's network, not an error of nslab's.
        let one = |from: &Netns, to: Ipv4Addr, seq: u16| -> std::result::Result<u64, String> {
            match from.echo_tries(to, seq, 2, CHECK_ECHO_TIMEOUT) {
                Ok(Some(r)) => Ok(r.rtt_us),
                Ok(None) => Err(format!(
                    "no reply within {}s",
                    CHECK_ECHO_TIMEOUT.as_secs() * 2
                )),
                Err(e) => Err(format!("no reply: sending failed ({})", e.root_cause())),
            }
        };
        match one(&seen[i].ns, b_ip, 1) {
            Ok(us) => {
                ab = "reply".into();
                rtts.push_str(&format!("; echo {an} -> {b_ip}: {}", views::millis(us)));
            }
            Err(why) => ab = why,
        }
        match one(&seen[j].ns, a_ip, 11) {
            Ok(us) => {
                ba_echo = "reply".into();
                rtts.push_str(&format!("; echo {bn} -> {a_ip}: {}", views::millis(us)));
            }
            Err(why) => ba_echo = why,
        }
        if ab != "reply" || ba_echo != "reply" {
            problem = Some("no-reply");
        }
    }
    let inode = |n: &str| {
        net::netns_inode(n)
            .map(|i| format!("net:[{i}]"))
            .unwrap_or_default()
    };
    let addr_list = |s: &Seen, l: &Link| {
        let v: Vec<String> = v4(&s.addrs, l.index)
            .iter()
            .map(|(ip, p)| format!("{ip}/{p}"))
            .collect();
        if v.is_empty() {
            "no address".to_string()
        } else {
            v.join(" ")
        }
    };
    Ok(Observation {
        judged: format!(
            "first = {an} {}, second = {bn} {}; veth {} (ifindex {}, {}) <-> {} (ifindex {}, {}){rtts}",
            inode(&an),
            inode(&bn),
            la.name,
            la.index,
            addr_list(&seen[i], &la),
            lb.name,
            lb.index,
            addr_list(&seen[j], &lb),
        ),
        facts: facts(["two joined by a veth pair", "one in each namespace", &state, &addresses, &ab, &ba_echo]),
        problem,
        verify: vec![
            "ip netns list".into(),
            format!("sudo ip -n {an} -d link show {}", la.name),
            format!("sudo ip -n {bn} -br addr"),
            match target {
                Some((_, (b_ip, _))) => format!("sudo ip netns exec {an} ping -c 1 {b_ip}"),
                None => format!("sudo ip -n {an} route"),
            },
        ],
        notes,
    })
}

#[cfg(test)]
mod tests;
