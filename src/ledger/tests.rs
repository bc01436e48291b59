use super::cleanup::*;
use super::record::*;
use super::runfile::*;
use super::*;
use std::path::PathBuf;

/// One entry of each kind. A new variant breaks the match below: add an entry of it
/// here and its kind to [`Resource::KINDS`].
fn one_of_each() -> [Resource; 9] {
    let all = [
        Resource::Process {
            pid: 1,
            start_time: 2,
        },
        Resource::Cgroup { path: "/a".into() },
        Resource::Mount { path: "/a".into() },
        Resource::NetNs { name: "n".into() },
        Resource::Link { name: "l".into() },
        Resource::Dir { path: "/a".into() },
        Resource::NftTable {
            family: "ip".into(),
            name: "t".into(),
        },
        Resource::SysvShm {
            key: 1,
            ipc_ns: 2,
            creator: 3,
        },
        Resource::SysvMsg { key: 1, ipc_ns: 2 },
    ];
    for r in &all {
        match r {
            Resource::Process { .. }
            | Resource::Cgroup { .. }
            | Resource::Mount { .. }
            | Resource::NetNs { .. }
            | Resource::Link { .. }
            | Resource::Dir { .. }
            | Resource::NftTable { .. }
            | Resource::SysvShm { .. }
            | Resource::SysvMsg { .. } => {}
        }
    }
    all
}

#[test]
fn every_kind_of_resource_is_known_to_cleanup() {
    let samples = one_of_each();
    let kinds: Vec<String> = samples
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, Resource::KINDS);
}

fn ledger_in(dir: &std::path::Path) -> Ledger {
    Ledger {
        file: dir.join("runs").join("1-2.json"),
        run: RunFile {
            owner_pid: 1,
            owner_start_time: 2,
            ..RunFile::default()
        },
        handle: None,
        written: 0,
    }
}

fn on_disk(l: &Ledger) -> RunFile {
    read_run_file(&l.file).expect("the run file parses")
}

#[test]
fn run_file_is_rewritten_in_place_and_padded_when_it_shrinks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = ledger_in(tmp.path());
    for i in 0..3 {
        l.run.resources.push(Resource::Dir {
            path: PathBuf::from(format!("/var/tmp/nslab-x{i}")),
        });
        save(&mut l).unwrap();
    }
    assert_eq!(on_disk(&l).resources.len(), 3);
    let full = std::fs::metadata(&l.file).unwrap().len();
    l.run.resources.truncate(1);
    save(&mut l).unwrap();
    assert_eq!(
        on_disk(&l).resources,
        l.run.resources,
        "trailing spaces are ignored"
    );
    assert_eq!(
        std::fs::metadata(&l.file).unwrap().len(),
        full,
        "rewritten in place, padded"
    );
    // Past one page it is replaced whole; back under, rewritten in place again.
    for i in 0..100 {
        l.run.resources.push(Resource::Cgroup {
            path: PathBuf::from(format!("/sys/fs/cgroup/pids/nslab/c{i}")),
        });
    }
    save(&mut l).unwrap();
    assert_eq!(on_disk(&l).resources.len(), 101);
    l.run.resources.truncate(2);
    save(&mut l).unwrap();
    assert_eq!(on_disk(&l).resources.len(), 2);
    l.run.resources.clear();
    save(&mut l).unwrap();
    assert!(!l.file.exists(), "an empty ledger leaves no file");
}

/// A run file as a newer nslab might write it: a kind this one does not know.
fn run_file_with_unknown(dir: &std::path::Path, owned: &std::path::Path) -> PathBuf {
    let file = dir.join("runs").join("1-2.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let text = serde_json::json!({
        "owner_pid": i32::MAX - 1,
        "owner_start_time": 2,
        "resources": [
            {"kind": "dir", "path": owned},
            {"kind": "hologram", "name": "nslab-h1", "layers": 3},
        ]
    });
    std::fs::write(&file, text.to_string()).unwrap();
    file
}

#[test]
fn unknown_kinds_are_kept_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let owned = tmp.path().join("nslab-rootfs-x");
    std::fs::create_dir_all(owned.join("bin")).unwrap();
    let file = run_file_with_unknown(tmp.path(), &owned);
    let run = read_run_file(&file).expect("a file with an unknown kind still parses");
    assert_eq!(
        run.resources,
        vec![Resource::Dir {
            path: owned.clone()
        }]
    );
    assert_eq!(run.unknown.len(), 1);

    // Its owner is gone: cleanup removes what it knows and keeps the rest on record.
    let report = cleanup_dead_runs_in(&tmp.path().join("runs"), &FAKE).unwrap();
    assert!(!owned.exists(), "{report:?}");
    assert!(report.damaged.is_empty(), "{report:?}");
    assert_eq!(report.unknown.len(), 1, "{report:?}");
    assert!(report.unknown[0].contains("\"hologram\""), "{report:?}");
    let left = read_run_file(&file).expect("the run file stays for the unknown entry");
    assert!(left.resources.is_empty());
    assert_eq!(left.unknown[0]["layers"], 3, "kept exactly as written");
}

#[test]
fn every_kind_is_known_to_cleanup_and_fields_it_does_not_know_are_left_alone() {
    for r in one_of_each() {
        let mut v = serde_json::to_value(&r).unwrap();
        assert!(
            !describe_unknown(&v).contains("does not know (a newer"),
            "{v}"
        );
        v["color"] = "blue".into();
        let run: RunFile = serde_json::from_value(serde_json::json!({
            "owner_pid": 1, "owner_start_time": 2, "resources": [v], "written_by": "nslab 9"
        }))
        .unwrap();
        assert!(
            run.resources.is_empty(),
            "{r:?} with an extra field is not acted on"
        );
        let back = serde_json::to_value(&run).unwrap();
        assert_eq!(back["resources"][0]["color"], "blue", "kept as written");
        assert_eq!(back["written_by"], "nslab 9", "other fields kept");
    }
}

/// The system as the ledger's tests see it: owners with an odd PID are alive; a
/// directory is removed, unless recorded with identity 666 (someone else's now).
const FAKE: Reach = Reach {
    alive: &|pid, _| pid % 2 == 1,
    remove: &|r, id| match (r, id) {
        (_, Some(666)) => Ok(Removal::NotOurs("another object".into())),
        (Resource::Dir { path }, _) => {
            let _ = std::fs::remove_dir_all(path);
            Ok(Removal::Removed)
        }
        _ => anyhow::bail!("cannot remove {r:?} here"),
    },
};

fn write_run(dir: &std::path::Path, owner: i32, run: serde_json::Value) -> PathBuf {
    let file = dir.join(format!("{owner}-2.json"));
    std::fs::create_dir_all(dir).unwrap();
    let mut run = run;
    run["owner_pid"] = owner.into();
    run["owner_start_time"] = 2.into();
    std::fs::write(&file, run.to_string()).unwrap();
    file
}

#[test]
fn what_a_live_run_lists_is_never_removed_for_a_dead_one() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let shared = tmp.path().join("nslab-rootfs-shared");
    let only_dead = tmp.path().join("nslab-rootfs-dead");
    for d in [&shared, &only_dead] {
        std::fs::create_dir_all(d).unwrap();
    }
    let dir = |p: &PathBuf| serde_json::json!({"kind": "dir", "path": p});
    write_run(&runs, 3, serde_json::json!({"resources": [dir(&shared)]}));
    let dead = write_run(
        &runs,
        4,
        serde_json::json!({"resources": [dir(&shared), dir(&only_dead)]}),
    );
    let report = cleanup_dead_runs_in(&runs, &FAKE).unwrap();
    assert!(shared.exists(), "the live run's: {report:?}");
    assert!(!only_dead.exists(), "{report:?}");
    assert_eq!(report.live_runs, vec![3]);
    assert_eq!(report.not_ours.len(), 1, "{report:?}");
    assert!(!dead.exists(), "the dead run's record is done with");
}

#[test]
fn a_recorded_identity_decides_and_another_object_is_struck_off() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let theirs = tmp.path().join("nslab-rootfs-remade");
    std::fs::create_dir_all(&theirs).unwrap();
    let r = serde_json::json!({"kind": "dir", "path": theirs});
    let file = write_run(
        &runs,
        4,
        serde_json::json!({"resources": [r], "identities": [{"of": r, "id": 666}]}),
    );
    let run = read_run_file(&file).unwrap();
    assert_eq!(run.identity_of(&run.resources[0]), Some(666));
    let report = cleanup_dead_runs_in(&runs, &FAKE).unwrap();
    assert!(theirs.exists(), "{report:?}");
    assert!(
        report.removed.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert!(report.not_ours[0].contains("another object"), "{report:?}");
    assert!(
        !file.exists(),
        "struck off: nothing of nslab's is left to retry"
    );
}

#[test]
fn identities_are_written_beside_the_resources_and_forgotten_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = ledger_in(tmp.path());
    let r = Resource::Cgroup {
        path: "/sys/fs/cgroup/nslab/x".into(),
    };
    l.run.resources.push(r.clone());
    l.run.identities.push(Identity {
        of: r.clone(),
        id: 42,
    });
    save(&mut l).unwrap();
    let back = on_disk(&l);
    assert_eq!(back.identity_of(&r), Some(42));
    assert_eq!(back.resources, vec![r]);
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("cgroup")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("kind|path|name|pid|start_time|.{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Any text where a run file should be: read or refused, never a panic.
    #[test]
    fn any_text_reads_as_a_run_file_or_not_at_all(text in ".{0,200}") {
        let _ = serde_json::from_str::<RunFile>(&text);
    }

    /// Entries and fields this nslab does not know (a newer one's, or damaged ones) are
    /// written back as they were read, never dropped and never acted on.
    #[test]
    fn a_run_file_is_written_back_as_read(
        entries in proptest::collection::vec(json_value(), 0..6),
        extra in proptest::collection::btree_map("[a-z_]{1,8}", json_value(), 0..3),
        pid in proptest::prelude::any::<i32>(), start in proptest::prelude::any::<u64>()
    ) {
        let mut file = serde_json::json!({
            "owner_pid": pid, "owner_start_time": start, "resources": entries,
        });
        for (k, v) in extra {
            if !["owner_pid", "owner_start_time", "resources", "identities", "instances"].contains(&k.as_str()) {
                file[k] = v;
            }
        }
        let run: RunFile = serde_json::from_value(file.clone()).expect("a run file");
        proptest::prop_assert_eq!(run.resources.len() + run.unknown.len(), file["resources"].as_array().unwrap().len());
        let once = serde_json::to_value(&run).unwrap();
        let twice = serde_json::to_value(serde_json::from_value::<RunFile>(once.clone()).unwrap()).unwrap();
        proptest::prop_assert_eq!(&once, &twice);
        for (k, v) in file.as_object().unwrap() {
            if k != "resources" {
                proptest::prop_assert_eq!(Some(v), once.get(k));
            }
        }
    }
}
