//! Every lesson, run through with `--yes`, fits a projector's 80 columns and a wider
//! screen's 120: no line it prints is wider than the screen.

mod common;

use common::{serial, stdout, Sandbox};

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
    for n in numbers {
        for columns in [80, 120] {
            let run = |as_learner: bool| {
                let mut cmd = sb.cmd(&["lesson", &n.to_string(), "--yes", "--plain"]);
                cmd.env("COLUMNS", columns.to_string());
                if let (true, Ok(u)) = (as_learner, &learner) {
                    cmd.env("SUDO_UID", u.uid.to_string())
                        .env("SUDO_GID", u.gid.to_string());
                }
                common::output_of(&mut cmd)
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
}
