//! `nslab reset N` and `nslab reset --all`: progress forgotten, after a question on a
//! terminal or with --yes; nothing else changes.

mod common;

use common::{stdout, wait_until, Sandbox};
use std::time::Duration;

const TWO_LESSONS: &str = r#"{"lessons": {
  "1": {"steps_seen": "abc", "lesson_done": true, "check_passed": true, "updated": 1},
  "3": {"steps_seen": "a", "lesson_done": false, "check_passed": false, "updated": 2}
}}"#;

fn lessons_in(sb: &Sandbox) -> Vec<String> {
    let text = std::fs::read_to_string(sb.progress()).expect("progress file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("progress is JSON");
    v["lessons"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn with_progress() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.progress(), TWO_LESSONS).unwrap();
    sb
}

#[test]
fn one_lesson_or_all_with_yes() {
    let sb = with_progress();
    let out = sb.run(&["reset", "1", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(stdout(&out).contains("Forgot your progress in lesson 1 (pid)"));
    assert_eq!(lessons_in(&sb), ["3"]);

    let out = sb.run(&["reset", "1", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("Nothing to forget"),
        "{}",
        stdout(&out)
    );

    let out = sb.run(&["reset", "--all", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(lessons_in(&sb).is_empty());
    let list = stdout(&sb.run(&["progress", "--json"]));
    assert!(!list.contains("check_passed"), "{list}");
}

#[test]
fn refused_without_a_question_or_yes_and_for_what_is_not_a_lesson() {
    let sb = with_progress();
    for (args, says) in [
        (&["reset", "1"][..], "add --yes"),
        (&["reset", "2b", "--yes"][..], "nslab reset 2"),
        (&["reset", "99", "--yes"][..], "no lesson '99'"),
        (&["reset"][..], "--all"),
        (&["reset", "1", "--all"][..], "cannot be used with"),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let err = common::stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(lessons_in(&sb), ["1", "3"], "nothing forgotten");
}

#[test]
fn on_a_terminal_it_asks_first() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        common::skip("tmux is not installed (test.sh installs it)");
        return;
    }
    for (answer, kept) in [("n", vec!["1", "3"]), ("y", vec!["3"])] {
        let sb = with_progress();
        let term = sb.in_terminal("reset 1");
        assert!(
            wait_until(Duration::from_secs(30), || term.screen().contains("[y/N]")),
            "{}",
            term.screen()
        );
        assert!(term
            .screen()
            .contains("Forget your progress in lesson 1 (pid)?"));
        term.keys(&[answer, "Enter"]);
        assert_eq!(
            term.exit_code(Duration::from_secs(30)),
            Some(0),
            "{}",
            term.screen()
        );
        assert_eq!(lessons_in(&sb), kept, "answer {answer}");
    }
}
