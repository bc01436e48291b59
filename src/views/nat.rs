//! NAT rules read back from nftables, shown as `nft` prints them and as the `iptables`
//! command that would add the same rule.

use crate::kernel::net::nat::{NatAction, NatRule};

/// The rule's matches and action in nft syntax: `ip saddr 10.0.0.0/24 oifname != "x" masquerade`.
pub fn nft_syntax(r: &NatRule) -> String {
    let mut w: Vec<String> = Vec::new();
    if let Some(s) = &r.source {
        w.push(format!(
            "ip saddr {}{}/{}",
            if s.negated { "!= " } else { "" },
            s.addr,
            s.len
        ));
    }
    if let Some(o) = &r.out_interface {
        w.push(format!(
            "oifname {}\"{}\"",
            if o.negated { "!= " } else { "" },
            o.name
        ));
    }
    for m in &r.other_matches {
        w.push(format!("[{m}]"));
    }
    w.push(match &r.action {
        NatAction::Masquerade => "masquerade".to_string(),
        NatAction::Snat { to: Some(ip) } => format!("snat to {ip}"),
        NatAction::Snat { to: None } => "snat".to_string(),
        NatAction::Dnat { to: Some(ip) } => format!("dnat to {ip}"),
        NatAction::Dnat { to: None } => "dnat".to_string(),
        NatAction::Other { what } => format!("[{what}]"),
    });
    w.join(" ")
}

/// The iptables command that adds the same rule, when there is one.
pub fn iptables_syntax(r: &NatRule) -> Option<String> {
    if r.family != "ip" || !r.other_matches.is_empty() {
        return None;
    }
    let chain = match r.hook.as_deref() {
        Some("postrouting") => "POSTROUTING",
        Some("prerouting") => "PREROUTING",
        Some("output") => "OUTPUT",
        Some("input") => "INPUT",
        _ => return None,
    };
    let mut w = vec![format!("iptables -t nat -A {chain}")];
    if let Some(s) = &r.source {
        w.push(format!(
            "{}-s {}/{}",
            if s.negated { "! " } else { "" },
            s.addr,
            s.len
        ));
    }
    if let Some(o) = &r.out_interface {
        w.push(format!(
            "{}-o {}",
            if o.negated { "! " } else { "" },
            o.name
        ));
    }
    w.push(match &r.action {
        NatAction::Masquerade => "-j MASQUERADE".into(),
        NatAction::Snat { to: Some(ip) } => format!("-j SNAT --to-source {ip}"),
        NatAction::Dnat { to: Some(ip) } => format!("-j DNAT --to-destination {ip}"),
        _ => return None,
    });
    Some(w.join(" "))
}

/// Every rule: where it lives, then both syntaxes.
pub fn rules(rules: &[NatRule]) -> String {
    if rules.is_empty() {
        return "(no NAT rules in nftables)\n".into();
    }
    let mut out = String::new();
    for r in rules {
        out.push_str(&format!(
            "table {} {}, chain {}{}  (handle {})\n",
            r.family,
            r.table,
            r.chain,
            match &r.hook {
                Some(h) => format!(" (hook {h})"),
                None => String::new(),
            },
            r.handle
        ));
        let width = crate::ui::view_width();
        let rest = " ".repeat(13);
        out.push_str(&crate::ui::wrap(
            &nft_syntax(r),
            width,
            "  nft:       ",
            &rest,
        ));
        match iptables_syntax(r) {
            Some(c) => {
                let note = if r.xt_target {
                    "   (added by iptables-nft)"
                } else {
                    ""
                };
                let c = format!("{c}{note}");
                out.push_str(&crate::ui::wrap(&c, width, "  iptables:  ", &rest));
            }
            None => out.push_str("  iptables:  (no iptables equivalent)\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rules_say_so() {
        assert_eq!(rules(&[]), "(no NAT rules in nftables)\n");
    }
}
