//! What both of lesson 2's checks observe, as plain data: the learner's named network
//! namespaces and the host's own, their links and addresses, the id each one knows the
//! others by, and the echoes a check's plan sent between them.

use crate::checks::whose::{self, Recorded, Whose};
use crate::kernel::net::{self, Address, Link, Netns};
use anyhow::Result;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Duration;

/// How long an echo of a check waits for its reply.
pub const CHECK_ECHO_TIMEOUT: Duration = Duration::from_secs(2);

/// One of the learner's named namespaces as seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Space {
    pub name: String,
    /// Its inode (the number in `net:[…]`), when readable.
    pub inode: Option<u64>,
    /// When /run/netns/NAME was made: the newest pair is the learner's current work.
    pub ctime: i64,
    pub links: Vec<Link>,
    pub addrs: Vec<Address>,
    /// The id (link-netnsid) this namespace knows each other one seen by: (index into
    /// `Net::spaces`, id).
    pub ids: Vec<(usize, i32)>,
    /// The id it knows the host's namespace (nslab's own) by.
    pub host_id: Option<i32>,
}

impl Space {
    pub fn id_of(&self, other: usize) -> Option<i32> {
        self.ids
            .iter()
            .find(|(m, _)| *m == other)
            .map(|(_, id)| *id)
    }
}

/// The learner's namespaces and the host's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Net {
    /// The names of the learner's namespaces in /run/netns, opened or not.
    pub names: Vec<String>,
    /// Those that could be looked into.
    pub spaces: Vec<Space>,
    /// Named namespaces that are nslab's own, left out.
    pub ignored: Vec<String>,
    /// Names that could not be looked into, with why.
    pub unreadable: Vec<(String, String)>,
    /// The host's namespace (nslab's own): its links, and the id it knows each space by.
    pub host_links: Vec<Link>,
    pub host_ids: Vec<(usize, i32)>,
}

impl Net {
    /// What observing found worth saying: nslab's own left out, what could not be read.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.ignored.is_empty() {
            notes.push(format!("ignored nslab's own: {}", self.ignored.join(", ")));
        }
        for (name, why) in &self.unreadable {
            notes.push(format!("could not look into {name}: {why}"));
        }
        notes
    }

    /// The learner's namespaces by name, or "none of yours".
    pub fn shown(&self) -> String {
        if self.names.is_empty() {
            "none of yours".to_string()
        } else {
            self.names.join(", ")
        }
    }

    pub fn host_id_of(&self, space: usize) -> Option<i32> {
        self.host_ids
            .iter()
            .find(|(m, _)| *m == space)
            .map(|(_, id)| *id)
    }
}

/// An echo a check's plan asks for: from a space to an address, `tries` at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    pub from: usize,
    pub to: Ipv4Addr,
    pub seq: u16,
    pub tries: u16,
}

/// How an echo went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply {
        rtt_us: u64,
    },
    /// No reply within the timeout, every try.
    Silent,
    /// Sending failed (a `prohibit` route, no route): the cause.
    Failed(String),
}

/// The echoes to send once the namespaces are seen, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub pings: Vec<Ping>,
    /// Stop at the first echo that got no reply: the first silence is the answer.
    pub stop_at_silence: bool,
}

/// Everything a lesson 2 check judges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub net: Net,
    /// The echoes sent, with how each went.
    pub echoes: Vec<(Ping, Outcome)>,
}

impl Seen {
    /// How the echo of `ping` went; an echo not sent counts as failed to send.
    pub fn outcome(&self, ping: &Ping) -> Outcome {
        self.echoes
            .iter()
            .find(|(p, _)| p == ping)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| Outcome::Failed("not sent".into()))
    }
}

/// Look at the learner's namespaces and the host's, then send the echoes `plan` asks for.
pub fn observe(plan: fn(&Net) -> Plan) -> Result<Seen> {
    let recorded = Recorded::read();
    let (ignored, names): (Vec<String>, Vec<String>) = net::list_netns()?
        .into_iter()
        .partition(|n| whose::netns(n, &recorded) == Whose::Nslab);
    let mut handles: Vec<Netns> = Vec::new();
    let mut spaces: Vec<Space> = Vec::new();
    let mut unreadable = Vec::new();
    for name in &names {
        match Netns::open(name).and_then(|mut ns| {
            let links = ns.links()?;
            let addrs = ns.addresses()?;
            Ok((ns, links, addrs))
        }) {
            Ok((ns, links, addrs)) => {
                handles.push(ns);
                spaces.push(Space {
                    name: name.clone(),
                    inode: net::netns_inode(name),
                    ctime: net::netns_ctime(name),
                    links,
                    addrs,
                    ..Space::default()
                });
            }
            Err(e) => unreadable.push((name.clone(), format!("{e:#}"))),
        }
    }
    let mut host = net::host()?;
    let host_links = host.links()?;
    let host_fd = net::own_netns_fd()?;
    let mut host_ids = Vec::new();
    for a in 0..handles.len() {
        for b in 0..handles.len() {
            if a == b {
                continue;
            }
            let (here, there) = if a < b {
                let (l, r) = handles.split_at_mut(b);
                (&mut l[a], &r[0])
            } else {
                let (l, r) = handles.split_at_mut(a);
                (&mut r[0], &l[b])
            };
            let id = here.rtnl().netnsid_of(there.fd())?;
            if let Some(id) = id {
                spaces[a].ids.push((b, id));
            }
        }
        spaces[a].host_id = handles[a].rtnl().netnsid_of(host_fd.as_fd())?;
        if let Some(id) = host.netnsid_of(handles[a].fd())? {
            host_ids.push((a, id));
        }
    }
    let net = Net {
        names,
        spaces,
        ignored,
        unreadable,
        host_links,
        host_ids,
    };
    let plan = plan(&net);
    let mut echoes = Vec::new();
    for ping in plan.pings {
        let ns = &handles[ping.from];
        let sent = if ping.tries <= 1 {
            ns.echo(ping.to, ping.seq, CHECK_ECHO_TIMEOUT)
        } else {
            ns.echo_tries(ping.to, ping.seq, ping.tries, CHECK_ECHO_TIMEOUT)
        };
        let outcome = match sent {
            Ok(Some(r)) => Outcome::Reply { rtt_us: r.rtt_us },
            Ok(None) => Outcome::Silent,
            Err(e) => Outcome::Failed(e.root_cause().to_string()),
        };
        let silent = !matches!(outcome, Outcome::Reply { .. });
        echoes.push((ping, outcome));
        if silent && plan.stop_at_silence {
            break;
        }
    }
    Ok(Seen { net, echoes })
}

/// A bridge holding veth ports: where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hub {
    /// The host's own namespace (Docker's docker0, most tutorials).
    Host,
    /// One of the learner's namespaces (an index into `Net::spaces`).
    Space(usize),
}

/// A bridge with the learner's namespaces its veth ports lead into (exercise 2b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    pub hub: Hub,
    pub br: Link,
    /// Its veth ports, in the hub.
    pub ports: Vec<Link>,
    /// The namespaces plugged in, each with the far end of its port's pair.
    pub members: Vec<(usize, Link)>,
}

impl Bridge {
    /// Where the bridge is, as the learner would say it.
    pub fn hub_name<'a>(&self, net: &'a Net) -> &'a str {
        match self.hub {
            Hub::Host => "the host's namespace",
            Hub::Space(h) => &net.spaces[h].name,
        }
    }

    /// What is DOWN of the bridge, its ports and the members' ends, by name.
    pub fn down(&self, net: &Net) -> Vec<String> {
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
                .map(|(m, e)| format!("{} (in {})", e.name, net.spaces[*m].name)),
        );
        down
    }

    pub fn member_names<'a>(&self, net: &'a Net) -> Vec<&'a str> {
        self.members
            .iter()
            .map(|(m, _)| net.spaces[*m].name.as_str())
            .collect()
    }
}

/// The bridges with veth ports into the learner's namespaces: every bridge in one of
/// them, and each bridge of the host's namespace with at least one of them plugged in (a
/// host bridge without is the machine's own, Docker's, not the learner's). Host bridges
/// first: of two with as many members, the last is judged.
pub fn bridges(net: &Net) -> Vec<Bridge> {
    let mut out = Vec::new();
    let hubs = std::iter::once(Hub::Host).chain((0..net.spaces.len()).map(Hub::Space));
    for hub in hubs {
        let links = match hub {
            Hub::Host => &net.host_links,
            Hub::Space(h) => &net.spaces[h].links,
        };
        for br in links.iter().filter(|l| l.kind == "bridge") {
            let ports: Vec<Link> = links
                .iter()
                .filter(|l| l.kind == "veth" && l.master == Some(br.index))
                .cloned()
                .collect();
            let mut members: Vec<(usize, Link)> = Vec::new();
            for (m, space) in net.spaces.iter().enumerate() {
                let id = match hub {
                    Hub::Host => net.host_id_of(m),
                    Hub::Space(h) if h == m => continue,
                    Hub::Space(h) => net.spaces[h].id_of(m),
                };
                let Some(id) = id else { continue };
                for p in ports.iter().filter(|p| p.link_netnsid == Some(id)) {
                    if let Some(end) = space
                        .links
                        .iter()
                        .find(|e| Some(e.index) == p.peer_index && e.kind == "veth")
                    {
                        members.push((m, end.clone()));
                    }
                }
            }
            if hub == Hub::Host && members.is_empty() {
                continue;
            }
            out.push(Bridge {
                hub,
                br: br.clone(),
                ports,
                members,
            });
        }
    }
    out
}

#[cfg(test)]
pub mod fixture {
    //! Namespaces and links for the judges' tests.
    use super::*;
    use std::net::IpAddr;

    pub fn link(index: u32, name: &str, kind: &str) -> Link {
        Link {
            index,
            name: name.into(),
            kind: kind.into(),
            flags: vec!["UP".into(), "LOWER_UP".into()],
            admin_up: true,
            lower_up: true,
            operstate: "UP".into(),
            mtu: 1500,
            mac: None,
            peer_index: None,
            link_netnsid: None,
            master: None,
        }
    }

    /// A veth whose peer is ifindex `peer` in the namespace known here by `netnsid`.
    pub fn veth(index: u32, name: &str, peer: u32, netnsid: Option<i32>) -> Link {
        Link {
            peer_index: Some(peer),
            link_netnsid: netnsid,
            ..link(index, name, "veth")
        }
    }

    pub fn addr(index: u32, ifname: &str, ip: &str, prefix_len: u8) -> Address {
        Address {
            index,
            ifname: ifname.into(),
            family: "inet".into(),
            address: IpAddr::V4(ip.parse().unwrap()),
            prefix_len,
            scope: "global".into(),
        }
    }

    pub fn space(name: &str, ctime: i64) -> Space {
        Space {
            name: name.into(),
            inode: Some(4026532000 + ctime as u64),
            ctime,
            links: vec![link(1, "lo", "loopback")],
            ..Space::default()
        }
    }

    /// Every echo of `plan` answered.
    pub fn answered(net: Net, plan: fn(&Net) -> Plan) -> Seen {
        let echoes = plan(&net)
            .pings
            .into_iter()
            .map(|p| (p, Outcome::Reply { rtt_us: 50 }))
            .collect();
        Seen { net, echoes }
    }
}
