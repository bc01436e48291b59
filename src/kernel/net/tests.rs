//! Root tests: real namespaces, a real veth pair, real echoes. Each skips with a reason
//! when not root, and removes everything it made even when it fails.

use super::rtnl::errno_of;
use super::*;
use std::net::IpAddr;
use std::process::Command;
use std::time::Instant;

/// Removes what a test made, whatever happens: namespaces by name, host links by name.
struct Guard {
    netns: Vec<String>,
    links: Vec<String>,
}

impl Guard {
    fn new(prefix: &str, netns: &[&str], links: &[&str]) -> Guard {
        let g = Guard {
            netns: netns.iter().map(|n| format!("{prefix}{n}")).collect(),
            links: links.iter().map(|n| format!("{prefix}{n}")).collect(),
        };
        // Leftovers of an earlier run of this same test (same PID is unlikely, but cheap).
        g.remove();
        g
    }

    fn remove(&self) {
        for l in &self.links {
            let _ = delete_link(l);
            ledger::forget(&Resource::Link { name: l.clone() });
        }
        for n in &self.netns {
            let _ = delete_netns(n);
            ledger::forget(&Resource::NetNs { name: n.clone() });
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.remove();
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Short names (IFNAMSIZ) unique to this test process.
fn prefix(tag: &str) -> String {
    format!("nslabt{tag}{}", std::process::id() % 100000)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_namespaces_a_veth_and_echo_both_ways() {
    let Some(_root) = crate::testing::root_or_skip("this network test") else {
        return;
    };
    let p = prefix("e");
    let guard = Guard::new(&p, &["a", "b"], &["x", "y"]);
    let (na, nb, va, vb) = (
        &guard.netns[0],
        &guard.netns[1],
        &guard.links[0],
        &guard.links[1],
    );

    let mut a = Netns::create(na).unwrap();
    let mut b = Netns::create(nb).unwrap();
    let listed = list_netns().unwrap();
    assert!(listed.contains(na) && listed.contains(nb), "{listed:?}");
    assert!(
        ip(&["netns", "list"]).contains(na.as_str()),
        "ip netns list shows it"
    );
    assert!(ledger::current().contains(&Resource::NetNs { name: na.clone() }));

    // A new namespace has only lo, and it is DOWN.
    let links = a.links().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        (
            links[0].name.as_str(),
            links[0].kind.as_str(),
            links[0].admin_up
        ),
        ("lo", "loopback", false)
    );

    let mut host = host().unwrap();
    trace::take();
    host.create_veth(va, vb).unwrap();
    let calls = trace::take();
    assert_eq!(
        calls,
        [format!("RTM_NEWLINK ifname={va} kind=veth peer={vb} flags=NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK -> ack")]
    );
    assert!(ledger::current().contains(&Resource::Link { name: va.clone() }));
    let hv = host.link(va).unwrap().expect("veth in host");
    assert_eq!(hv.kind, "veth");

    // A second create with the same names: the kernel's EEXIST, with context.
    let err = host.create_veth(va, vb).unwrap_err();
    assert_eq!(errno_of(&err), Some(Errno::EEXIST), "{err:#}");
    assert!(trace::take()[0].ends_with("-> EEXIST (File exists)"));
    assert!(
        ledger::current().contains(&Resource::Link { name: va.clone() }),
        "the real one stays recorded"
    );

    host.move_to_netns(va, a.fd()).unwrap();
    host.move_to_netns(vb, b.fd()).unwrap();
    assert_eq!(host.link(va).unwrap(), None, "gone from the host");
    assert!(
        !ledger::current().contains(&Resource::Link { name: va.clone() }),
        "owned by the namespace now"
    );

    a.rtnl()
        .add_ipv4(va, Ipv4Addr::new(10, 77, 0, 1), 24)
        .unwrap();
    b.rtnl()
        .add_ipv4(vb, Ipv4Addr::new(10, 77, 0, 2), 24)
        .unwrap();
    for (ns, dev) in [(&mut a, va), (&mut b, vb)] {
        ns.rtnl().set_up("lo", true).unwrap();
        ns.rtnl().set_up(dev, true).unwrap();
    }

    let la = a.rtnl().link(va).unwrap().unwrap();
    let lb = b.rtnl().link(vb).unwrap().unwrap();
    assert!(la.admin_up && lb.admin_up);
    assert_eq!(
        la.peer_index,
        Some(lb.index),
        "each end names the other's ifindex"
    );
    assert_eq!(lb.peer_index, Some(la.index));
    let id_of_b = a.rtnl().netnsid_of(b.fd()).unwrap();
    assert!(
        id_of_b.is_some() && la.link_netnsid == id_of_b,
        "{la:?} vs {id_of_b:?}"
    );

    let addrs = a.addresses().unwrap();
    assert!(addrs.iter().any(|x| x.ifname == *va
        && x.address == IpAddr::from([10, 77, 0, 1])
        && x.prefix_len == 24));

    let before = a.counters().unwrap();
    let tx_before = before.iter().find(|c| c.name == *va).unwrap().tx_packets;
    // The carrier may take a moment after both ends come up on a loaded machine.
    let reply = a
        .echo(Ipv4Addr::new(10, 77, 0, 2), 1, Duration::from_secs(5))
        .unwrap()
        .expect("reply from b");
    assert_eq!(reply.from, Ipv4Addr::new(10, 77, 0, 2));
    let back = b
        .echo(Ipv4Addr::new(10, 77, 0, 1), 2, Duration::from_secs(5))
        .unwrap()
        .expect("reply from a");
    assert_eq!((back.seq, back.bytes), (2, 64));
    let after = a.counters().unwrap();
    let tx_after = after.iter().find(|c| c.name == *va).unwrap().tx_packets;
    assert!(
        tx_after > tx_before,
        "the echo left through {va}: {tx_before} -> {tx_after}"
    );

    // No reply from an address nobody has.
    assert_eq!(
        a.echo(Ipv4Addr::new(10, 77, 0, 99), 3, Duration::from_millis(300))
            .unwrap(),
        None
    );

    // Deleting a destroys its veth end, and with it the peer in b.
    a.delete().unwrap();
    assert!(!netns_path(na).exists());
    wait_until("the peer in b is gone", || {
        b.rtnl().link(vb).unwrap().is_none()
    });
    b.delete().unwrap();
    assert!(!ip(&["netns", "list"]).contains(p.as_str()));
    assert!(!ip(&["-o", "link"]).contains(p.as_str()));
    assert!(
        !ledger::current()
            .iter()
            .any(|r| r.describe().contains(p.as_str())),
        "{:?}",
        ledger::current()
    );
    drop(guard);
}

#[test]
fn a_learners_namespace_can_be_opened_but_not_deleted() {
    let Some(_root) = crate::testing::root_or_skip("this network test") else {
        return;
    };
    // Made with the real tool, as a learner would; the name has no nslab prefix.
    let name = format!("learnert{}", std::process::id());
    let st = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(st.success());
    struct IpDel(String);
    impl Drop for IpDel {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = IpDel(name.clone());
    let mut ns = Netns::open(&name).unwrap();
    assert_eq!(ns.links().unwrap().len(), 1);
    drop(ns);
    assert!(
        delete_netns(&name).is_err(),
        "nslab refuses to delete a learner's namespace"
    );
    assert!(netns_path(&name).exists());
    assert!(
        Netns::create("plainname").is_err(),
        "nslab names its own with the prefix"
    );
}

#[test]
fn in_netns_runs_inside_and_reports_errors() {
    let Some(_root) = crate::testing::root_or_skip("this network test") else {
        return;
    };
    let p = prefix("i");
    let guard = Guard::new(&p, &["n"], &[]);
    let ns = Netns::create(&guard.netns[0]).unwrap();
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let theirs: String = in_netns(ns.name(), || {
        Ok(std::fs::read_link("/proc/self/ns/net")?
            .to_string_lossy()
            .into_owned())
    })
    .unwrap();
    assert_ne!(
        mine.to_string_lossy(),
        theirs,
        "the closure ran in another namespace"
    );
    assert_eq!(
        std::fs::read_link("/proc/self/ns/net").unwrap(),
        mine,
        "nslab itself never moved"
    );
    let err = in_netns::<(), _>(ns.name(), || bail!("deliberate")).unwrap_err();
    assert!(format!("{err:#}").contains("deliberate"));
    let counters = ns.counters().unwrap();
    assert_eq!(
        counters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["lo"]
    );
    assert!(Netns::create(ns.name()).is_err(), "exists already");
    ns.delete().unwrap();
    drop(guard);
}

#[test]
fn a_bridge_and_its_port_inside_a_namespace() {
    let Some(_root) = crate::testing::root_or_skip("this network test") else {
        return;
    };
    let p = prefix("b");
    let guard = Guard::new(&p, &["n"], &[]);
    let mut ns = Netns::create(&guard.netns[0]).unwrap();
    let r = ns.rtnl();
    r.create_bridge("br0").unwrap();
    r.create_veth("port0", "peer0").unwrap();
    assert!(
        ledger::current()
            .iter()
            .all(|x| !matches!(x, Resource::Link { .. })),
        "links inside a namespace go with it"
    );
    r.set_master("port0", Some("br0")).unwrap();
    let br = r.link("br0").unwrap().unwrap();
    assert_eq!(br.kind, "bridge");
    assert_eq!(r.link("port0").unwrap().unwrap().master, Some(br.index));
    assert!(trace::take()
        .iter()
        .any(|l| l.contains(&format!("master={}", br.index)) && l.ends_with("-> ack")));
    r.set_master("port0", None).unwrap();
    assert_eq!(r.link("port0").unwrap().unwrap().master, None);
    let err = r.set_master("port0", Some("nosuchbr")).unwrap_err();
    assert!(format!("{err:#}").contains("no link nosuchbr"), "{err:#}");
    assert!(r.delete("br0").unwrap());
    assert!(!r.delete("br0").unwrap(), "already gone is not an error");
    ns.delete().unwrap();
    drop(guard);
}
