//! Check 9's judge on fixtures: the pass and each failure its hints name.

use super::*;
use crate::checks::report;
use crate::checks::whose::Recorded;
use crate::kernel::ns::NsLink;
use crate::lessons::join::INFO;

const HOST: u64 = 4026531830;
const BOX: u64 = 4026532500;
const HOST_ROOT: RootId = (2049, 2);
const BOX_ROOT: RootId = (2049, 917_505);

fn p(pid: i32, ppid: i32, comm: &str, pid_ns: u64, nspid: &[i32]) -> ProcInfo {
    ProcInfo {
        start_time: 1000 + pid as u64,
        nspid: nspid.to_vec(),
        pid_ns: Some(pid_ns),
        ..ProcInfo::fixture(pid, ppid, comm)
    }
}

/// A set of links: the host's inodes, except the kinds given, which are the container's.
fn links(pid: i32, boxed: &[NsKind]) -> NsSet {
    NsSet {
        pid,
        links: KINDS
            .iter()
            .enumerate()
            .map(|(i, &kind)| NsLink {
                kind,
                inode: Some(if boxed.contains(&kind) { BOX } else { HOST } + i as u64),
                unreadable: None,
            })
            .collect(),
    }
}

/// What `unshare --pid --fork --mount --uts --ipc` gives: the container's PID 1's.
const CONTAINER: [NsKind; 4] = [NsKind::Pid, NsKind::Mnt, NsKind::Uts, NsKind::Ipc];
/// What the unshare process itself, and nsenter before its fork, are in.
const NO_PID: [NsKind; 3] = [NsKind::Mnt, NsKind::Uts, NsKind::Ipc];

fn member(pid: i32, boxed: &[NsKind], root: RootId) -> Member {
    Member {
        pid,
        ns: links(pid, boxed),
        root: Some(root),
    }
}

/// One terminal ran `sudo unshare --pid --fork --mount --uts --ipc --mount-proc chroot
/// rootfs /bin/sh` (PID 1 = host PID 103); a second `sudo nsenter -t 103 -a -r -w sleep
/// 1000` (nsenter 202 forked the sleep, 203, PID 2 inside); nslab checks from a third.
fn machine() -> Seen {
    Seen {
        search: Search {
            host_pid_ns: HOST + 4,
            table: vec![
                p(1, 0, "init", HOST + 4, &[1]),
                p(100, 1, "bash", HOST + 4, &[100]),
                p(101, 100, "sudo", HOST + 4, &[101]),
                p(102, 101, "unshare", HOST + 4, &[102]),
                p(103, 102, "sh", BOX + 4, &[103, 1]),
                p(200, 1, "bash", HOST + 4, &[200]),
                p(201, 200, "sudo", HOST + 4, &[201]),
                p(202, 201, "nsenter", HOST + 4, &[202]),
                p(203, 202, "sleep", BOX + 4, &[203, 2]),
                p(300, 1, "nslab", HOST + 4, &[300]),
            ],
            recorded: Recorded {
                pids: vec![300],
                ..Recorded::default()
            },
            asked: None,
            own_root: Some(HOST_ROOT),
            roots: vec![(103, Some(BOX_ROOT))],
        },
        own: links(300, &[]),
        inside: Some(Inside {
            pid: 103,
            ns: links(103, &CONTAINER),
            root: Some(BOX_ROOT),
            members: vec![
                member(102, &NO_PID, HOST_ROOT),
                member(202, &NO_PID, BOX_ROOT),
                member(203, &CONTAINER, BOX_ROOT),
            ],
        }),
    }
}

fn fact<'a>(o: &'a Observation, name: &str) -> &'a str {
    &o.facts.iter().find(|f| f.name == name).unwrap().value
}

/// The judgement of `seen`: it does not pass, for the reason `hint`, and says `value`
/// of fact `name`.
fn fails(seen: &Seen, hint: &str, name: &str, value: &str) -> Observation {
    let o = judge(seen);
    assert_eq!(o.problem, Some(hint), "{:?}", o.facts);
    assert_eq!(fact(&o, name), value, "{:?}", o.facts);
    assert!(!report(&INFO, o.clone()).passed);
    o
}

#[test]
fn the_texts_name_every_hint_and_fact() {
    crate::lessons::assert_hints_and_facts(
        &INFO,
        &[
            "nothing-found",
            "host-namespace",
            "nothing-joined",
            "child-of-pid1",
            "namespaces-missing",
            "root-not-container",
        ],
        &[FOUND, SECOND, NAMESPACES, ROOT, PID_INSIDE],
    );
}

#[test]
fn a_process_brought_in_by_nsenter_passes() {
    let o = judge(&machine());
    let r = report(&INFO, o.clone());
    assert!(r.passed, "{}", r.diff);
    assert!(o.judged.contains("host PID 203"), "{}", o.judged);
    assert!(o.judged.contains("NSpid: 203 2"), "{}", o.judged);
    assert!(
        o.judged.contains("`nsenter` = host PID 202"),
        "{}",
        o.judged
    );
    assert!(o
        .verify
        .iter()
        .any(|v| v.contains("/proc/103/ns/ /proc/203/ns/")));
}

#[test]
fn a_shell_brought_in_whose_children_run_passes_for_the_shell() {
    let mut s = machine();
    s.search.table[8].comm = "sh".into();
    s.search
        .table
        .push(p(204, 203, "sleep", BOX + 4, &[204, 3]));
    s.inside
        .as_mut()
        .unwrap()
        .members
        .push(member(204, &CONTAINER, BOX_ROOT));
    let o = judge(&s);
    assert!(report(&INFO, o.clone()).passed);
    assert!(o.judged.contains("`sh` = host PID 203"), "{}", o.judged);
}

#[test]
fn no_container_is_nothing_found() {
    let mut s = machine();
    s.search.table.retain(|p| p.pid_ns == Some(HOST + 4));
    s.search.roots.clear();
    s.inside = None;
    fails(&s, "nothing-found", FOUND, "not found");
}

#[test]
fn a_pid_in_the_host_namespace_is_said_so() {
    let mut s = machine();
    s.search.asked = Some(100);
    fails(
        &s,
        "host-namespace",
        FOUND,
        "PID 100 is in the host's PID namespace",
    );
    // The joiner's PID finds the container it is in.
    s.search.asked = Some(203);
    assert!(report(&INFO, judge(&s)).passed);
}

#[test]
fn a_container_alone_is_nothing_joined() {
    let mut s = machine();
    s.search.table.retain(|p| p.pid < 200 || p.pid == 300);
    s.inside.as_mut().unwrap().members.retain(|m| m.pid < 200);
    let o = fails(&s, "nothing-joined", SECOND, "none");
    assert!(o.verify.iter().any(|v| v.contains("nsenter -t 103")));
}

#[test]
fn a_child_of_pid1_did_not_join() {
    let mut s = machine();
    // `sleep 1000 &` typed in the container's shell.
    s.search.table.retain(|p| p.pid < 200 || p.pid == 300);
    s.search
        .table
        .push(p(104, 103, "sleep", BOX + 4, &[104, 2]));
    let inside = s.inside.as_mut().unwrap();
    inside.members.retain(|m| m.pid < 200);
    inside.members.push(member(104, &CONTAINER, BOX_ROOT));
    fails(
        &s,
        "child-of-pid1",
        SECOND,
        "a child of PID 1, started inside",
    );
}

#[test]
fn a_joiner_from_outside_is_preferred_to_a_child_of_pid1() {
    let mut s = machine();
    s.search
        .table
        .push(p(104, 103, "sleep", BOX + 4, &[104, 3]));
    s.inside
        .as_mut()
        .unwrap()
        .members
        .push(member(104, &CONTAINER, BOX_ROOT));
    assert!(report(&INFO, judge(&s)).passed);
}

#[test]
fn namespaces_not_joined_are_named() {
    // `nsenter -t 103 -p -m -i -r sleep 1000`: no --uts.
    let mut s = machine();
    s.inside.as_mut().unwrap().members[2] =
        member(203, &[NsKind::Pid, NsKind::Mnt, NsKind::Ipc], BOX_ROOT);
    fails(&s, "namespaces-missing", NAMESPACES, "not joined: uts");

    // `nsenter -t 103 -m -u -i -r sleep 1000`: no PID namespace, so no fork either: the
    // sleep is nsenter itself, in the host's PID namespace.
    let mut s = machine();
    s.search.table.retain(|p| p.pid != 203);
    s.search.table[7].comm = "sleep".into();
    s.inside.as_mut().unwrap().members.retain(|m| m.pid != 203);
    let o = fails(&s, "namespaces-missing", NAMESPACES, "not joined: pid");
    assert_eq!(
        fact(&o, PID_INSIDE),
        "none: not in the container's PID namespace"
    );
    assert_eq!(fact(&o, SECOND), "found, came in from outside");
}

#[test]
fn a_root_not_the_containers_is_said_so() {
    // `nsenter -t 103 -a sleep 1000`: no -r, and the container is a chroot.
    let mut s = machine();
    s.inside.as_mut().unwrap().members[2].root = Some(HOST_ROOT);
    fails(
        &s,
        "root-not-container",
        ROOT,
        "the host's /, not the container's",
    );
}

#[test]
fn nslabs_own_joiners_are_not_the_learners() {
    let mut s = machine();
    s.search.table.retain(|p| p.pid < 200 || p.pid == 300);
    s.search
        .table
        .push(p(301, 300, "nslab", BOX + 4, &[301, 2]));
    let inside = s.inside.as_mut().unwrap();
    inside.members.retain(|m| m.pid < 200);
    inside.members.push(member(301, &CONTAINER, BOX_ROOT));
    fails(&s, "nothing-joined", SECOND, "none");
}

#[test]
fn related_means_one_of_the_containers_own_namespaces() {
    let init = links(103, &CONTAINER);
    let own = links(300, &[]);
    assert!(related(&init, &own, &links(1, &[NsKind::Uts])));
    assert!(!related(&init, &own, &links(1, &[])), "the host's only");
    assert!(
        !related(&init, &own, &links(1, &[NsKind::Net])),
        "a namespace PID 1 does not have"
    );
}
