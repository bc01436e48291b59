use super::build::*;
use super::listing::*;
use super::rules::*;
use super::table::*;
use super::wire::*;
use super::*;
use crate::ledger::Resource;
use nix::errno::Errno;
use std::net::Ipv4Addr;

#[test]
fn builds_a_masquerade_rule_that_parses_back() {
    let exprs = masquerade_expressions(Ipv4Addr::new(10, 203, 7, 9), 24, "nslab-h7");
    let mut rule = Attrs::default();
    rule.str(NFTA_RULE_TABLE, "nslab-7")
        .str(NFTA_RULE_CHAIN, "postrouting")
        .nest(NFTA_RULE_EXPRESSIONS, &exprs);
    let chains = vec![postrouting_chain()];
    let r = parse_rule(NFPROTO_IPV4, &rule.0, &chains).expect("a nat rule");
    assert_eq!(
        r.source,
        Some(PrefixMatch {
            addr: Ipv4Addr::new(10, 203, 7, 0),
            len: 24,
            negated: false
        })
    );
    assert_eq!(
        r.out_interface,
        Some(IfMatch {
            name: "nslab-h7".into(),
            negated: true
        })
    );
    assert_eq!(r.action, NatAction::Masquerade);
    assert!(r.covers(Ipv4Addr::new(10, 203, 7, 2)));
    assert!(!r.covers(Ipv4Addr::new(10, 203, 8, 2)));
    assert!(r.other_matches.is_empty(), "{:?}", r.other_matches);
}

#[test]
fn a_filter_rule_without_nat_is_not_a_nat_rule() {
    let mut rule = Attrs::default();
    rule.str(NFTA_RULE_TABLE, "filter")
        .str(NFTA_RULE_CHAIN, "INPUT");
    assert!(parse_rule(NFPROTO_IPV4, &rule.0, &[]).is_none());
}

/// The raw chain and rule dump of the current network namespace as capture text (one
/// `chain|rule FAMILY HEX` line each): the format of the fixtures below.
fn capture_text() -> String {
    let (chains, rules) = raw_dump().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut text = String::new();
    for (f, b) in chains {
        text.push_str(&format!("chain {f} {}\n", hex(&b)));
    }
    for (f, b) in rules {
        text.push_str(&format!("rule {f} {}\n", hex(&b)));
    }
    text
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Rules and chains from a capture (see [`capture_dump`]).
fn from_capture(text: &str) -> Vec<NatRule> {
    let mut chains = Vec::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        let mut w = line.split(' ');
        let (kind, fam, hex) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        let fam: u8 = fam.parse().unwrap();
        match kind {
            "chain" => chains.extend(parse_chain(fam, &unhex(hex))),
            _ => rules.push((fam, unhex(hex))),
        }
    }
    rules
        .iter()
        .filter_map(|(f, b)| parse_rule(*f, b, &chains))
        .collect()
}

/// Captured on this machine in a scratch network namespace after
/// `iptables -t nat -A POSTROUTING -s 10.203.5.0/24 ! -o nslabv5 -j MASQUERADE`,
/// `iptables -t nat -A POSTROUTING -s 10.203.6.0/24 -j SNAT --to-source 192.0.2.2`
/// (iptables v1.8.9 (nf_tables)) and, with nft,
/// `add rule ip natv post ip saddr 10.203.9.0/24 oifname != "eth0" masquerade` and
/// `add rule ip natv post ip saddr 10.203.10.0/24 snat to 192.0.2.2`.
#[test]
fn reads_iptables_nft_and_native_nft_rules_from_real_bytes() {
    let rules = from_capture(include_str!("fixtures/iptables-nft-1.8.9-and-nft.txt"));
    assert_eq!(rules.len(), 4, "{rules:#?}");
    let net = |c, l| {
        Some(PrefixMatch {
            addr: Ipv4Addr::new(10, 203, c, 0),
            len: l,
            negated: false,
        })
    };
    let r = &rules[0];
    assert_eq!((r.table.as_str(), r.chain.as_str()), ("nat", "POSTROUTING"));
    assert_eq!(r.hook.as_deref(), Some("postrouting"));
    assert_eq!(r.source, net(5, 24));
    assert_eq!(
        r.out_interface,
        Some(IfMatch {
            name: "nslabv5".into(),
            negated: true
        })
    );
    assert_eq!(r.action, NatAction::Masquerade);
    assert!(r.other_matches.is_empty(), "{:?}", r.other_matches);
    let r = &rules[1];
    assert_eq!(r.source, net(6, 24));
    assert_eq!(r.out_interface, None);
    assert_eq!(
        r.action,
        NatAction::Snat {
            to: Some(Ipv4Addr::new(192, 0, 2, 2))
        }
    );
    let r = &rules[2];
    assert_eq!((r.table.as_str(), r.chain.as_str()), ("natv", "post"));
    assert_eq!(r.source, net(9, 24));
    assert_eq!(
        r.out_interface.as_ref().map(|i| i.name.as_str()),
        Some("eth0")
    );
    assert_eq!(r.action, NatAction::Masquerade);
    assert_eq!(
        rules[3].action,
        NatAction::Snat {
            to: Some(Ipv4Addr::new(192, 0, 2, 2))
        }
    );
    assert!(rules.iter().all(|r| r.is_source_nat()));
    // iptables-nft 1.8.9: `-j MASQUERADE` / `-j SNAT` stay x_tables targets; nft's are native.
    assert!(rules[0].xt_target && rules[1].xt_target);
    assert!(!rules[2].xt_target && !rules[3].xt_target);
}

/// A MASQUERADE target with no source match (`iptables -t nat -A POSTROUTING -j MASQUERADE`).
#[test]
fn reads_an_xt_masquerade_target() {
    let mut data = Attrs::default();
    data.str(NFTA_TARGET_NAME, "MASQUERADE")
        .be32(NFTA_TARGET_REV, 0)
        .put(NFTA_TARGET_INFO, &[0u8; 20]);
    let mut list = Attrs::default();
    list.nest(NFTA_LIST_ELEM, &expr("target", Some(&data)));
    let mut rule = Attrs::default();
    rule.str(NFTA_RULE_TABLE, "nat")
        .str(NFTA_RULE_CHAIN, "POSTROUTING")
        .nest(NFTA_RULE_EXPRESSIONS, &list);
    let r = parse_rule(NFPROTO_IPV4, &rule.0, &[]).unwrap();
    assert_eq!(r.action, NatAction::Masquerade);
    assert!(r.xt_target && r.source.is_none() && r.covers(Ipv4Addr::new(1, 2, 3, 4)));
}

/// Root: a table of nslab's made through netlink, read back, deleted (host namespace;
/// the rule masquerades a subnet nothing uses).
#[test]
fn creates_reads_back_and_deletes_its_table() {
    let Some(_g) = crate::testing::root_or_skip("creates_reads_back_and_deletes_its_table") else {
        return;
    };
    let name = format!("nslabt-{}", std::process::id());
    let _ = delete_table(&name);
    // Removes the table and its record however the test ends.
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            if delete_table(&self.0).is_ok() {
                crate::ledger::forget(&Resource::NftTable {
                    family: "ip".into(),
                    name: self.0.clone(),
                });
            }
        }
    }
    let _gone = Gone(name.clone());
    create_masquerade_table(&name, Ipv4Addr::new(10, 203, 254, 77), 24, "nslabt254h").unwrap();
    assert!(crate::ledger::current().contains(&Resource::NftTable {
        family: "ip".into(),
        name: name.clone()
    }));
    let t = tables().unwrap();
    assert!(
        t.iter().any(|t| t.name == name && t.family == "ip"),
        "{t:?}"
    );
    let c = chains().unwrap();
    let ours = c.iter().find(|c| c.table == name).expect("its chain");
    assert_eq!(ours.hook.as_deref(), Some("postrouting"));
    assert_eq!(ours.priority, Some(NF_IP_PRI_NAT_SRC));
    assert_eq!(ours.chain_type.as_deref(), Some("nat"));
    let rules = nat_rules().unwrap();
    let r = rules.iter().find(|r| r.table == name).expect("its rule");
    // The capture format of the fixtures reads back the same rule (NSLAB_NAT_CAPTURE=FILE
    // keeps the text, to make a new fixture from what is loaded on a machine).
    let text = capture_text();
    if let Some(out) = std::env::var_os("NSLAB_NAT_CAPTURE") {
        std::fs::write(out, &text).unwrap();
    }
    let captured = from_capture(&text);
    assert_eq!(captured.iter().find(|c| c.table == name), Some(r), "{text}");
    assert_eq!(r.action, NatAction::Masquerade);
    assert_eq!(
        r.source,
        Some(PrefixMatch {
            addr: Ipv4Addr::new(10, 203, 254, 0),
            len: 24,
            negated: false
        })
    );
    assert_eq!(
        r.out_interface
            .as_ref()
            .map(|o| (o.name.as_str(), o.negated)),
        Some(("nslabt254h", true))
    );
    // A second creation is refused (EXCL) and leaves the first alone.
    assert!(create_masquerade_table(&name, Ipv4Addr::new(10, 203, 254, 0), 24, "x").is_err());
    assert!(
        crate::ledger::current().contains(&Resource::NftTable {
            family: "ip".into(),
            name: name.clone()
        }),
        "the refused second creation leaves the first one's record"
    );
    // Its identity is the handle the kernel gave it; a table made again under the name
    // by anyone else has another, and nslab's record no longer removes it.
    let resource = Resource::NftTable {
        family: "ip".into(),
        name: name.clone(),
    };
    let handle = table_handle("ip", &name);
    assert!(handle.is_some(), "{t:?}");
    assert_eq!(crate::ledger::identity_of(&resource), handle);
    assert!(delete_table(&name).unwrap());
    let mut plain = Attrs::default();
    plain.str(NFTA_TABLE_NAME, &name);
    super::socket::Nfnl::open()
        .and_then(|mut s| {
            s.batch(vec![(
                NFT_MSG_NEWTABLE,
                NLM_F_CREATE | NLM_F_EXCL,
                NFPROTO_IPV4,
                plain,
                format!("NFT_MSG_NEWTABLE family=ip name={name}"),
            )])
        })
        .unwrap();
    assert_ne!(table_handle("ip", &name), handle);
    let outcome = crate::kernel::removal::remove(&resource, handle).unwrap();
    assert!(
        matches!(outcome, crate::ledger::Removal::NotOurs(_)),
        "{outcome:?}"
    );
    assert!(table_handle("ip", &name).is_some(), "the other table stays");
    assert!(delete_table(&name).unwrap());
    crate::ledger::forget(&resource);
    assert!(!delete_table(&name).unwrap(), "already gone");
    // The refusal comes before any request: asked with a name nobody has.
    let foreign = format!("notnslab-{}", std::process::id());
    assert!(delete_table(&foreign).is_err(), "never someone else's");
}

#[test]
fn tells_a_kernel_without_nftables_nat_from_other_refusals() {
    let refused = |request: &str, errno| -> anyhow::Error {
        anyhow::Error::from(crate::kernel::net::rtnl::NetlinkError {
            request: request.into(),
            errno,
            kernel_message: None,
        })
        .context("creating nftables table ip nslab-1")
    };
    assert!(is_unsupported(&refused(
        "NFT_MSG_NEWCHAIN table=x",
        Errno::ENOENT
    )));
    assert!(is_unsupported(&refused(
        "NFT_MSG_NEWTABLE family=ip",
        Errno::EOPNOTSUPP
    )));
    assert!(!is_unsupported(&refused(
        "NFT_MSG_NEWTABLE family=ip",
        Errno::EEXIST
    )));
    assert!(!is_unsupported(&refused(
        "NFT_MSG_DELTABLE family=ip",
        Errno::ENOENT
    )));
    let no_socket = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::EPROTONOSUPPORT));
    assert!(is_unsupported(&no_socket));
}

/// The base chain nslab's NAT table hangs its rule on.
fn postrouting_chain() -> Chain {
    Chain {
        family: "ip".into(),
        table: "nslab-7".into(),
        name: "postrouting".into(),
        hook: Some("postrouting".into()),
        priority: Some(100),
        chain_type: Some("nat".into()),
    }
}

/// A NAT rule as the kernel lists it, from nslab's own expressions.
fn masquerade_rule_bytes() -> Vec<u8> {
    let exprs = masquerade_expressions(Ipv4Addr::new(10, 203, 7, 9), 24, "nslab-h7");
    let mut rule = Attrs::default();
    rule.str(NFTA_RULE_TABLE, "nslab-7")
        .str(NFTA_RULE_CHAIN, "postrouting")
        .nest(NFTA_RULE_EXPRESSIONS, &exprs);
    rule.0
}

/// Netlink attributes nested a few levels, with the kinds nftables uses and any payload.
fn attr_tree() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let leaf = proptest::collection::vec(any::<u8>(), 0..24);
    leaf.prop_recursive(4, 64, 6, |inner| {
        proptest::collection::vec((0u16..8, inner), 0..6).prop_map(|children| {
            let mut a = Attrs::default();
            for (kind, payload) in children {
                a.put(kind, &payload);
            }
            a.0
        })
    })
}

proptest::proptest! {
    /// The host's tables, chains and rules as any kernel (or a damaged message) sends them:
    /// parsed or skipped, never a panic.
    #[test]
    fn nftables_listings_parse_without_panicking(body in attr_tree(), family in 0u8..12) {
        let chains: Vec<Chain> = parse_chain(family, &body).into_iter().collect();
        let _ = parse_table(family, &body);
        let _ = parse_rule(family, &body, &chains);
        let _ = parse_attrs(&body);
    }

    /// nslab's own rule with bytes changed or cut short anywhere.
    #[test]
    fn a_damaged_nat_rule_parses_without_panicking(
        flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..6),
        cut in proptest::prelude::any::<proptest::sample::Index>()
    ) {
        let mut bytes = masquerade_rule_bytes();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let chains = vec![postrouting_chain()];
        let _ = parse_rule(NFPROTO_IPV4, &bytes, &chains);
    }
}
