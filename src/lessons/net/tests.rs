use super::bonus_check::{BRIDGE, BRIDGE_ADDRESSES, BRIDGE_ECHOES, BRIDGE_STATE};
use super::check::{ADDRESSES, ECHO_AB, ECHO_BA, ENDS, NAMESPACES, STATE};
use super::*;
use crate::kernel::net::same_subnet;

#[test]
fn subnets_both_ways() {
    let a = |s: &str, p| (s.parse::<Ipv4Addr>().unwrap(), p);
    assert!(same_subnet(a("10.0.0.1", 24), a("10.0.0.2", 24)));
    assert!(!same_subnet(a("10.0.0.1", 24), a("10.0.1.2", 24)));
    // Each must be inside the other's subnet: a /24 and a /30 that the /24 contains but
    // whose /30 does not contain the first address.
    assert!(!same_subnet(a("10.0.0.1", 24), a("10.0.0.200", 30)));
    assert!(same_subnet(a("10.0.0.1", 16), a("10.0.255.2", 16)));
    assert!(
        !same_subnet(a("10.0.0.1", 24), a("10.0.0.1", 24)),
        "the same address twice is a conflict"
    );
}

#[test]
fn hints_exist_for_every_problem_the_check_reports() {
    crate::lessons::assert_hints_and_facts(
        &INFO,
        &[
            "general",
            "namespace-missing",
            "no-veth",
            "end-in-host",
            "both-ends-in-host",
            "link-down",
            "address-missing",
            "different-subnets",
            "no-reply",
        ],
        &[NAMESPACES, ENDS, STATE, ADDRESSES, ECHO_AB, ECHO_BA],
    );
}

#[test]
fn exercise_2b_is_a_bonus_with_its_own_facts_and_hints() {
    crate::lessons::assert_hints_and_facts(
        &BONUS,
        &[
            "2b-no-bridge",
            "2b-few-members",
            "2b-down",
            "2b-address",
            "2b-no-reply",
            "2b-general",
        ],
        &[BRIDGE, BRIDGE_STATE, BRIDGE_ADDRESSES, BRIDGE_ECHOES],
    );
    let b = crate::lessons::bonus("2B").expect("2b is a bonus");
    assert_eq!(b.slug, "net-2b");
    assert_eq!(b.key(), "2b");
    assert!(b.is_bonus() && !INFO.is_bonus());
    assert!(
        crate::lessons::bonus_lesson("2b").is_none(),
        "2b has no steps of its own"
    );
}

#[test]
fn step_texts_show_the_commands_the_lesson_runs() {
    let c = INFO.step_text('c').unwrap();
    assert!(c.contains(&format!("ip link add {RED0} type veth peer name {BLUE0}")));
    assert!(c.contains(&format!("addr add {RED_IP}/{PREFIX} dev {RED0}")));
    let a = INFO.step_text('a').unwrap();
    assert!(a.contains(&format!("ip netns add {RED}")));
}
