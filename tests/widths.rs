//! Every lesson, run through with `--yes`, fits a projector's 80 columns and a wider
//! screen's 120: no line it prints is wider than the screen. What it shows, in order (its
//! outline: headings, commands, system calls, views), is the same at both widths and is
//! held in a snapshot per lesson.

mod common;

use common::{serial, stdout, Sandbox};
use std::os::fd::AsRawFd;

/// The lesson numbers, from the lesson folders (`lessons/NN-slug`): a new lesson is covered
/// without naming it here.
fn lesson_numbers() -> Vec<u32> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/lessons");
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)
        .expect("lessons/")
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('-').next()?.parse().ok()
        })
        .collect();
    numbers.sort();
    numbers
}

/// Every line of every lesson's texts, trimmed.
fn source_lines() -> std::collections::HashSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/lessons");
    let mut lines = std::collections::HashSet::new();
    for lesson in std::fs::read_dir(dir).expect("lessons/").flatten() {
        for file in std::fs::read_dir(lesson.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(file.path()) {
                lines.extend(text.lines().map(|l| l.trim().to_string()));
            }
        }
    }
    lines
}

#[test]
fn every_lesson_fits_80_and_120_columns() {
    require_root!();
    let _g = serial();
    let numbers = lesson_numbers();
    assert!(numbers.len() >= 5, "{numbers:?}");
    let sb = Sandbox::new();
    let learner = common::rootless::user();
    if let Err(why) = &learner {
        eprintln!("lessons done as the learner run as root alone: {why}");
    }
    let sources = source_lines();
    let mut over = Vec::new();
    let mut outlines = Vec::new();
    for n in numbers {
        for columns in [80, 120] {
            let events = tempfile::tempfile().expect("a file for the outline");
            let run = |as_learner: bool| {
                // Not closed on exec, so that nslab inherits it (nslab closes it on its own execs).
                let fd = nix::unistd::dup(&events).expect("dup");
                let mut cmd = sb.cmd(&["lesson", &n.to_string(), "--yes", "--plain"]);
                cmd.env("COLUMNS", columns.to_string())
                    .env("NSLAB_EVENTS_FD", fd.as_raw_fd().to_string());
                if let (true, Ok(u)) = (as_learner, &learner) {
                    cmd.env("SUDO_UID", u.uid.to_string())
                        .env("SUDO_GID", u.gid.to_string());
                }
                let out = common::output_of(&mut cmd);
                drop(fd);
                out
            };
            let mut out = run(false);
            // A lesson done as the learner (lesson 8) refuses root alone: as under sudo, then
            // (its ledger, were it to keep one, would be the machine's: under sudo nslab
            // ignores NSLAB_RUN_DIR).
            if out.status.code() == Some(3) && learner.is_ok() {
                out = run(true);
            }
            let text = stdout(&out);
            assert_eq!(
                out.status.code(),
                Some(0),
                "lesson {n} at {columns} columns:\n{text}\n{}",
                common::stderr(&out)
            );
            assert!(sb.run_files().is_empty(), "lesson {n} left its run file");
            outlines.push((n, columns, outline(&events)));
            for line in text
                .lines()
                .filter(|l| console::measure_text_width(l) > columns)
            {
                // A command from the lesson's texts is shown verbatim, to be copied: over
                // the width only when it is, with the least indent, in the source.
                let src = line.trim_start();
                if sources.contains(src) && console::measure_text_width(src) + 2 > columns {
                    println!("verbatim, wider in the source: lesson {n} at {columns}: {src}");
                    continue;
                }
                over.push(format!("lesson {n} at {columns}: {line}"));
            }
        }
    }
    assert!(
        over.is_empty(),
        "lines wider than the screen:\n{}",
        over.join("\n")
    );
    let version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else {
        "v1"
    };
    for pair in outlines.chunks(2) {
        let [(n, _, at_80), (_, _, at_120)] = pair else {
            panic!("one outline per width: {pair:?}");
        };
        similar_asserts_eq(*n, at_80, at_120);
        insta::with_settings!({snapshot_suffix => version}, {
            insta::assert_snapshot!(format!("outline_of_lesson_{n}"), at_80);
        });
    }
}

/// What a run showed, as nslab wrote it to its events descriptor, with this machine's and
/// this moment's particulars (numbers, where the cgroups are, hashes) taken out.
fn outline(events: &std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut f = events;
    f.rewind().unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    let cgroups = regex::Regex::new(r"/sys/fs/cgroup/\S*?nslab/").unwrap();
    let runs = regex::Regex::new(r"\b(nslab-[a-z]+)-\d+-[0-9a-f]+\b").unwrap();
    // The host ends of a container's pair are named after the subnet nslab found free.
    let pairs = regex::Regex::new(r"\bnslab\d+([hc])\b").unwrap();
    let hex = regex::Regex::new(r"\b(?:0x[0-9a-f]+|[0-9a-f]{8,})\b").unwrap();
    let digits = regex::Regex::new(r"\b\d+\b").unwrap();
    let text = cgroups.replace_all(&text, "[cgroup]/nslab/");
    let text = runs.replace_all(&text, "$1-[run]");
    let text = pairs.replace_all(&text, "nslabN$1");
    let text = hex.replace_all(&text, "[hex]");
    // Made only where there is a second CPU to move to.
    let text = text.replace(" sched_setaffinity", "");
    digits.replace_all(&text, "N").into_owned()
}

fn similar_asserts_eq(n: u32, at_80: &str, at_120: &str) {
    if at_80 != at_120 {
        let diff = similar::TextDiff::from_lines(at_80, at_120);
        panic!(
            "lesson {n} shows other things at 120 columns than at 80:\n{}",
            diff.unified_diff().header("80", "120")
        );
    }
}
