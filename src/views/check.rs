//! A check report as the learner reads it.

use crate::checks::CheckReport;
use crate::ui::{render_markdown_after, wrap};

pub fn report(r: &CheckReport) -> String {
    report_at(r, crate::ui::width())
}

/// The report in at most `width` columns.
pub fn report_at(r: &CheckReport, width: usize) -> String {
    let mut out = String::new();
    let verdict = if r.passed { "PASS" } else { "NOT YET" };
    let head = format!("Check {} ({}): {verdict}", r.exercise, r.slug);
    out.push_str(&wrap(&head, width, "", "  "));
    out.push('\n');
    if !r.judged.is_empty() {
        out.push_str(&wrap(&r.judged, width, "Judged: ", "  "));
    }
    for n in &r.notes {
        out.push_str(&wrap(n, width, "Note: ", "  "));
    }
    out.push_str("\nObserved:\n");
    for line in r.observed.lines() {
        out.push_str(&wrap(line, width, "  ", "      "));
    }
    if !r.passed {
        out.push_str("\nDifference from the expected result:\n");
        for line in r.diff.lines() {
            let rest = if line.starts_with("- ") || line.starts_with("+ ") {
                " ".repeat(12)
            } else {
                " ".repeat(4)
            };
            out.push_str(&wrap(line, width, "", &rest));
        }
        if let Some(h) = &r.hint {
            out.push('\n');
            out.push_str(&render_markdown_after(h.trim(), width, "Hint: ", "  "));
        }
    }
    if !r.verify.is_empty() {
        out.push_str("\nSee it for yourself:\n");
        for c in &r.verify {
            out.push_str(&wrap(c, width, "  $ ", "      "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::report as judge;
    use crate::lesson::{Fact, Observation};
    use crate::lessons;

    #[test]
    fn failing_report_shows_diff_hint_and_commands() {
        let info = lessons::find("1").unwrap();
        let mut facts: Vec<Fact> = info
            .expected_check
            .lines()
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                Fact::new(n, v)
            })
            .collect();
        let last = facts.len() - 1;
        facts[last].value = "the host's (ps inside lists every host process)".into();
        let r = judge(
            info,
            Observation {
                judged: "PID namespace 4026532000: PID 1 is bash (host PID 4321)".into(),
                facts,
                problem: Some("no-mount-proc"),
                verify: vec!["sudo nsenter -t 4321 -p -m ps aux".into()],
                notes: vec![],
            },
        );
        assert!(!r.passed);
        insta::assert_snapshot!(report(&r));
        let wide = report_at(&r, 120);
        assert!(wide.lines().all(|l| crate::ui::text_width(l) <= 120));
        insta::assert_snapshot!("failing_report_at_120", wide);
        let narrow = report_at(&r, 60);
        assert!(narrow.lines().all(|l| crate::ui::text_width(l) <= 60));
    }
}
