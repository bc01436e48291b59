//! A check report as the learner reads it.

use crate::report::CheckReport;
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
    use crate::views::fixtures::failing_report;

    #[test]
    fn a_failing_report_fits_60_columns() {
        let r = failing_report();
        assert!(!r.passed);
        let narrow = report_at(&r, 60);
        assert!(narrow.lines().all(|l| crate::ui::text_width(l) <= 60));
    }
}
