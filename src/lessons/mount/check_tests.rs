//! Check 7's judge on fixtures: the pass and each failure its hints name.

use super::*;
use crate::checks::report;
use crate::kernel::overlay::Entry;
use crate::lessons::mount::INFO;

const HOST_MNT: u64 = 4026531841;
const NEW_MNT: u64 = 4026532600;
/// When the overlay was mounted (WORK's mtime), in ns.
const MOUNTED: i128 = 1_700_000_000_000_000_000;
const BEFORE: i128 = MOUNTED - 5_000_000_000;
const AFTER: i128 = MOUNTED + 3_000_000_000;

fn p(pid: i32, ppid: i32, comm: &str) -> ProcInfo {
    ProcInfo {
        start_time: 1000 + pid as u64,
        pid_ns: Some(4026531836),
        ..ProcInfo::fixture(pid, ppid, comm)
    }
}

fn entry(path: &str, kind: EntryKind, ctime_ns: i128) -> Entry {
    Entry {
        path: path.into(),
        kind,
        size: 2,
        ctime_ns,
        preview: None,
    }
}

fn layer(dir: &str, mtime: i128, entries: Vec<Entry>) -> Layer {
    Layer {
        dir: dir.into(),
        entries,
        truncated: false,
        unreadable: None,
        mtime_ns: Some(mtime),
    }
}

const LINE: &str = "80 60 0:52 / /root/ov/MERGED rw,relatime - overlay none \
rw,lowerdir=/root/ov/A:/root/ov/B,upperdir=/root/ov/U,workdir=/root/ov/W,uuid=on";

fn overlay_of(line: &str) -> SeenOverlay {
    let mount = mountinfo::parse(line).remove(0);
    let layers = mount.overlay().unwrap();
    SeenOverlay {
        mount,
        layers,
        lower: vec![
            layer(
                "/root/ov/A",
                BEFORE,
                vec![entry("a.txt", EntryKind::File, BEFORE)],
            ),
            layer(
                "/root/ov/B",
                BEFORE,
                vec![entry("b.txt", EntryKind::File, BEFORE)],
            ),
        ],
        upper: Some(layer(
            "/root/ov/U",
            AFTER,
            vec![
                entry("a.txt", EntryKind::File, AFTER),
                entry("b.txt", EntryKind::Whiteout, AFTER),
            ],
        )),
        work: Some(layer(
            "/root/ov/W",
            MOUNTED,
            vec![entry("work", EntryKind::Dir, AFTER)],
        )),
    }
}

/// `sudo unshare --mount bash` (PID 103) in a terminal, the overlay done by the book;
/// a Docker container's shell in a namespace of its own; nslab checking.
fn machine() -> Seen {
    Seen {
        host_mnt: HOST_MNT,
        host_mounts: mountinfo::parse(
            "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             90 27 0:60 / /var/lib/docker/overlay2/9f/merged rw - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X,upperdir=/var/lib/docker/overlay2/9f/diff,workdir=/var/lib/docker/overlay2/9f/work\n",
        ),
        table: vec![
            p(1, 0, "init"),
            p(100, 1, "bash"),
            p(101, 100, "sudo"),
            p(103, 101, "bash"),
            p(150, 1, "containerd-shim"),
            p(151, 150, "sh"),
            p(200, 100, "nslab"),
        ],
        spaces: vec![Space {
            pid: 103,
            mnt_ns: NEW_MNT,
            overlays: vec![overlay_of(LINE)],
        }],
        ignored: 1,
        asked: None,
    }
}

type Change = Box<dyn Fn(&mut Seen)>;

fn ov(s: &mut Seen) -> &mut SeenOverlay {
    s.spaces[0].overlays.last_mut().unwrap()
}

fn verdict(s: &Seen) -> (bool, Option<&'static str>, Observation) {
    let obs = judge(s);
    let r = report(&INFO, obs.clone());
    (r.passed, obs.problem, obs)
}

#[test]
fn passes_the_exercise_done_by_the_book() {
    let (passed, problem, obs) = verdict(&machine());
    assert!(passed, "{:?}", obs.facts);
    assert_eq!(problem, None);
    assert!(obs.judged.contains("host PID 103"), "{}", obs.judged);
    assert!(obs.judged.contains("whiteout: b.txt"), "{}", obs.judged);
    assert!(obs.notes.iter().any(|n| n.contains("ignored 1")));
}

#[test]
fn each_failure_names_its_hint() {
    let cases: Vec<(&str, Change)> = vec![
        ("nothing-found", Box::new(|s: &mut Seen| s.spaces.clear())),
        (
            "no-overlay",
            Box::new(|s: &mut Seen| s.spaces[0].overlays.clear()),
        ),
        (
            // Mounted on the host, then `unshare --mount`: the shell's copy is the host's.
            "host-namespace",
            Box::new(|s: &mut Seen| s.host_mounts.extend(mountinfo::parse(LINE))),
        ),
        (
            // Mounted from a plain terminal: only the host has it.
            "host-namespace",
            Box::new(|s: &mut Seen| {
                s.spaces[0].overlays.clear();
                s.host_mounts.extend(mountinfo::parse(LINE));
            }),
        ),
        (
            "shared-namespace",
            Box::new(|s: &mut Seen| s.asked = Some((100, Some(HOST_MNT)))),
        ),
        (
            "one-lower",
            Box::new(|s: &mut Seen| {
                let o = ov(s);
                o.lower.truncate(1);
                o.layers.lower.truncate(1);
            }),
        ),
        (
            "no-upper",
            Box::new(|s: &mut Seen| {
                let o = ov(s);
                o.upper = None;
                o.work = None;
                o.layers.upper = None;
                o.layers.work = None;
            }),
        ),
        (
            "nothing-written",
            Box::new(|s: &mut Seen| {
                ov(s).upper.as_mut().unwrap().entries.remove(0);
            }),
        ),
        (
            // A new file made through MERGED is no copy-up.
            "nothing-written",
            Box::new(|s: &mut Seen| {
                ov(s).upper.as_mut().unwrap().entries[0].path = "new.txt".into();
            }),
        ),
        (
            "nothing-deleted",
            Box::new(|s: &mut Seen| {
                ov(s).upper.as_mut().unwrap().entries.remove(1);
            }),
        ),
        (
            // `rm B/b.txt`: no whiteout, and B changed after the mount.
            "deleted-in-lower",
            Box::new(|s: &mut Seen| {
                let o = ov(s);
                o.upper.as_mut().unwrap().entries.remove(1);
                o.lower[1].entries.clear();
                o.lower[1].mtime_ns = Some(AFTER);
            }),
        ),
        (
            // Deleted through MERGED, then from B as well.
            "deleted-in-lower",
            Box::new(|s: &mut Seen| {
                ov(s).lower[1].entries.clear();
            }),
        ),
        (
            // `echo x >> A/a.txt` under the mounted overlay.
            "lower-changed",
            Box::new(|s: &mut Seen| {
                ov(s).lower[0].entries[0].ctime_ns = AFTER;
            }),
        ),
    ];
    for (want, change) in cases {
        let mut s = machine();
        change(&mut s);
        let (passed, problem, obs) = verdict(&s);
        assert!(!passed, "{want}: {:?}", obs.facts);
        assert_eq!(problem, Some(want), "{:?}", obs.facts);
        assert!(INFO.hint(want).is_some(), "hints.md has {want}");
    }
}

#[test]
fn strangers_and_nslabs_own_overlays_are_not_the_learners() {
    // Docker's overlay on the host is in the fixture: it is not "host-namespace".
    let mut s = machine();
    s.spaces.clear();
    assert_eq!(verdict(&s).1, Some("nothing-found"));
    // nslab's own lesson overlay on the host: not the learner's either.
    s.host_mounts.extend(mountinfo::parse(
        "95 27 0:70 / /var/tmp/nslab-mount-1-a/overlay/merged rw - overlay none rw,lowerdir=/var/tmp/nslab-mount-1-a/l1:/var/tmp/nslab-mount-1-a/l2",
    ));
    assert_eq!(verdict(&s).1, Some("nothing-found"));
}

#[test]
fn the_newest_namespace_and_its_last_overlay_are_judged() {
    let mut s = machine();
    let mut older = s.spaces[0].clone();
    older.pid = 100; // started earlier
    older.mnt_ns = NEW_MNT + 1;
    older.overlays[0].lower.truncate(1);
    s.spaces.insert(0, older);
    let (passed, _, obs) = verdict(&s);
    assert!(passed, "{:?}", obs.facts);
    assert!(obs.notes.iter().any(|n| n.contains("judging the newest")));
    let mut s = machine();
    let mut first = overlay_of(LINE);
    first.lower.truncate(1);
    s.spaces[0].overlays.insert(0, first);
    let (passed, _, obs) = verdict(&s);
    assert!(passed, "the last mounted is judged: {:?}", obs.facts);
}

#[test]
fn relative_layer_paths_are_noted() {
    let mut s = machine();
    let line =
        "80 60 0:52 / /root/ov/MERGED rw - overlay none rw,lowerdir=A:B,upperdir=U,workdir=W";
    let mut o = overlay_of(line);
    o.lower[0].dir = "A".into();
    s.spaces[0].overlays = vec![o];
    let (passed, _, obs) = verdict(&s);
    assert!(passed);
    assert!(obs.notes.iter().any(|n| n.contains("relative paths")));
}

#[test]
fn every_hint_and_fact_is_in_the_texts() {
    crate::lessons::assert_hints_and_facts(
        &INFO,
        &[
            "general",
            "nothing-found",
            "shared-namespace",
            "no-overlay",
            "host-namespace",
            "one-lower",
            "no-upper",
            "nothing-written",
            "nothing-deleted",
            "deleted-in-lower",
            "lower-changed",
        ],
        &[OWN, OVERLAY, LOWER, UPPER, COPIED, WHITEOUT, UNCHANGED],
    );
}
